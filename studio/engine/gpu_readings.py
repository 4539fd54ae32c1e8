"""Live readings of the first NVIDIA GPU through NVML (the dashboard's charts, the queue's idle check).

No driver, no library or no device all mean "no GPU readings", never an error.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


class GpuReader:
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
                memory: Any = value  # nvml's memory record (used, total), or None
                out["gpu_mem_used_bytes"] = float(memory.used) if memory else None
                out["gpu_mem_percent"] = 100.0 * memory.used / memory.total if memory and memory.total else None
            else:
                out[key] = value
        return out
