"""Machine readings for the system charts, sampled in the GUI process on a timer.

Each reading takes well under a millisecond: psutil's CPU percentage is measured since the previous call
(never with a blocking interval), and NVML is initialised once. No NVIDIA driver simply means no GPU
readings; CPU and RAM are always there. CPU package power comes from RAPL where this user may read it
(root only on Linux 5.10 and later), for the dashboard's energy figures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import psutil
from PySide6.QtCore import QObject, QTimer, Signal

from studio.engine.gpu_readings import GpuReader
from studio.engine.power_meter import PowerSample
from studio.engine.rapl import RaplReader


@dataclass(frozen=True)
class SystemSample:
    t: float  # seconds since the sampler started
    cpu_percent: float
    ram_percent: float
    ram_used_bytes: float
    gpu_util_percent: float | None = None
    gpu_mem_percent: float | None = None
    gpu_mem_used_bytes: float | None = None
    gpu_temp_c: float | None = None
    gpu_power_w: float | None = None
    cpu_power_w: float | None = None  # RAPL, all packages
    gpu_present: bool = False

    def power(self) -> PowerSample:
        """This reading as the energy meter takes it."""
        return PowerSample(t=self.t, cpu_percent=self.cpu_percent, cpu_power_w=self.cpu_power_w,
                           gpu_present=self.gpu_present, gpu_util_percent=self.gpu_util_percent,
                           gpu_power_w=self.gpu_power_w)


class SystemSampler(QObject):
    """Samples the machine every `interval_ms` while started.

    Signals:
        sampled(SystemSample): a new reading.
    """

    sampled = Signal(object)

    def __init__(self, interval_ms: int = 1000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._gpu = GpuReader()
        self._rapl = RaplReader()
        self._t0 = time.monotonic()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.sample)
        psutil.cpu_percent(interval=None)  # primes the "since last call" measurement

    @property
    def has_gpu(self) -> bool:
        return self._gpu.present

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def is_active(self) -> bool:
        return self._timer.isActive()

    def sample(self) -> SystemSample:
        memory = psutil.virtual_memory()
        now = time.monotonic() - self._t0
        sample = SystemSample(
            t=now,
            cpu_percent=psutil.cpu_percent(interval=None),
            ram_percent=memory.percent,
            ram_used_bytes=float(memory.used),
            cpu_power_w=self._rapl.read_w(now),
            gpu_present=self._gpu.present,
            **(self._gpu.read() if self._gpu.present else {}),
        )
        self.sampled.emit(sample)
        return sample
