"""Machine readings for the system charts, sampled in the GUI process on a timer.

Each reading takes well under a millisecond: psutil's CPU percentage is measured since the previous call
(never with a blocking interval), and NVML is initialised once. No NVIDIA driver simply means no GPU
readings; CPU and RAM are always there.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import psutil
from PySide6.QtCore import QObject, QTimer, Signal

log = logging.getLogger(__name__)


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


class _Gpu:
    """The first NVIDIA GPU through NVML, or nothing."""

    def __init__(self) -> None:
        self._nvml: Any = None
        self._handle: Any = None
        try:
            import pynvml

            pynvml.nvmlInit()
            if pynvml.nvmlDeviceGetCount() > 0:
                self._nvml, self._handle = pynvml, pynvml.nvmlDeviceGetHandleByIndex(0)
        except Exception as exc:  # no driver, no library, no device: all mean "no GPU readings"
            log.debug("No NVIDIA GPU readings: %s", exc)

    @property
    def present(self) -> bool:
        return self._handle is not None

    def read(self) -> dict[str, float | None]:
        nvml, handle = self._nvml, self._handle
        out: dict[str, float | None] = {}
        for key, reader in (
            ("gpu_util_percent", lambda: float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)),
            ("gpu_mem", lambda: nvml.nvmlDeviceGetMemoryInfo(handle)),
            ("gpu_temp_c", lambda: float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))),
            ("gpu_power_w", lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0),
        ):
            try:
                value = reader()
            except Exception:  # one sensor missing (e.g. power on some boards) must not hide the others
                value = None
            if key == "gpu_mem":
                out["gpu_mem_used_bytes"] = float(value.used) if value else None
                out["gpu_mem_percent"] = 100.0 * value.used / value.total if value and value.total else None
            else:
                out[key] = value
        return out


class SystemSampler(QObject):
    """Samples the machine every `interval_ms` while started.

    Signals:
        sampled(SystemSample): a new reading.
    """

    sampled = Signal(object)

    def __init__(self, interval_ms: int = 1000, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._gpu = _Gpu()
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
        sample = SystemSample(
            t=time.monotonic() - self._t0,
            cpu_percent=psutil.cpu_percent(interval=None),
            ram_percent=memory.percent,
            ram_used_bytes=float(memory.used),
            **(self._gpu.read() if self._gpu.present else {}),
        )
        self.sampled.emit(sample)
        return sample
