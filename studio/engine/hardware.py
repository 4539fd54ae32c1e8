"""What this machine can do: GPUs, memory, disk, CPU, and optionally a measured matmul speed.

The planner and the fit badges read this profile. Probing never raises: a machine without an NVIDIA
driver is simply a CPU machine. The result is cached on disk for a few minutes because NVML start-up
and the optional throughput probe cost a noticeable fraction of a second.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import platform
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import psutil

from studio.engine.paths import cache_dir, studio_home

log = logging.getLogger(__name__)

CACHE_FILE = "hardware.json"
CACHE_TTL_S = 300.0
_CACHE_FORMAT = 1
MB = 1024 * 1024

Device = Literal["cuda", "mps", "cpu"]


@dataclass
class GpuInfo:
    name: str
    total_mb: int
    free_mb: int
    compute_capability: tuple[int, int]
    driver_version: str
    cuda_version: str
    bf16: bool
    power_limit_w: float | None


@dataclass
class HardwareProfile:
    os: str
    cpu_name: str
    cpu_cores: int
    ram_total_mb: int
    ram_available_mb: int
    disk_free_mb: int
    gpus: list[GpuInfo] = field(default_factory=list)
    mps: bool = False
    cuda_available: bool = False
    matmul_gflops: float | None = None
    # Things the probe noticed that a person should know (e.g. a damaged cache was replaced).
    notes: list[str] = field(default_factory=list)

    @property
    def device(self) -> Device:
        if self.cuda_available and self.gpus:
            return "cuda"
        return "mps" if self.mps else "cpu"

    @property
    def gpu(self) -> GpuInfo | None:
        """The GPU training runs on (the first one); None on CPU and Apple machines."""
        return self.gpus[0] if self.cuda_available and self.gpus else None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["device"] = self.device
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HardwareProfile:
        """Rebuild from `to_dict()` output; raises ValueError/TypeError/KeyError on anything malformed."""
        if not isinstance(data, dict):
            raise TypeError("a hardware profile must be a mapping")
        gpus = []
        for raw in data.get("gpus") or []:
            gpu = dict(raw)
            major, minor = gpu["compute_capability"]
            gpu["compute_capability"] = (int(major), int(minor))
            gpus.append(GpuInfo(**gpu))
        known = {"os", "cpu_name", "cpu_cores", "ram_total_mb", "ram_available_mb", "disk_free_mb", "mps",
                 "cuda_available", "matmul_gflops", "notes"}
        args = {k: v for k, v in data.items() if k in known}
        profile = cls(**args, gpus=gpus)
        for name in ("cpu_cores", "ram_total_mb", "ram_available_mb", "disk_free_mb"):
            if not isinstance(getattr(profile, name), int):
                raise TypeError(f"{name} must be an integer")
        return profile


def probe(use_cache: bool = True, measure_throughput: bool = False) -> HardwareProfile:
    """The hardware profile of this machine, from the cache when it is fresh. Never raises."""
    notes: list[str] = []
    if use_cache:
        cached, note = _read_cache()
        if note:
            notes.append(note)
        if cached is not None and (cached.matmul_gflops is not None or not measure_throughput):
            return cached
    profile = _probe_now(measure_throughput)
    profile.notes.extend(notes)
    _write_cache(profile)
    return profile


def _probe_now(measure_throughput: bool) -> HardwareProfile:
    vm = psutil.virtual_memory()
    gpus = _probe_gpus()
    profile = HardwareProfile(
        os=f"{platform.system()} {platform.release()}".strip(),
        cpu_name=_cpu_name(),
        cpu_cores=_cpu_cores(),
        ram_total_mb=int(vm.total // MB),
        ram_available_mb=int(vm.available // MB),
        disk_free_mb=int(shutil.disk_usage(studio_home()).free // MB),
        gpus=gpus,
        mps=_mps_available(),
        cuda_available=bool(gpus) and torch_cuda_build() is not False,
    )
    if measure_throughput:
        profile.matmul_gflops = measure_matmul_gflops(profile.device)
    return profile


def _probe_gpus() -> list[GpuInfo]:
    """NVIDIA GPUs through NVML; an empty list whenever the driver or library is missing or fails."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # no driver, no library, no permission: all mean "no usable NVIDIA GPU"
        return []
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        try:
            cuda_int = pynvml.nvmlSystemGetCudaDriverVersion_v2()
            cuda = f"{cuda_int // 1000}.{(cuda_int % 1000) // 10}"
        except pynvml.NVMLError:
            cuda = ""
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            try:
                power: float | None = pynvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000.0
            except pynvml.NVMLError:
                power = None
            gpus.append(GpuInfo(
                name=_text(pynvml.nvmlDeviceGetName(handle)),
                total_mb=int(memory.total // MB),
                free_mb=int(memory.free // MB),
                compute_capability=(int(major), int(minor)),
                driver_version=driver,
                cuda_version=cuda,
                bf16=int(major) >= 8,  # Ampere and newer
                power_limit_w=power,
            ))
        return gpus
    except Exception as exc:  # a half-working driver must not take the app down
        log.warning("NVIDIA GPU query failed: %s", exc)
        return []
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def torch_cuda_build() -> bool | None:
    """Whether the installed torch was built with CUDA, read from its version file without importing it.

    None when torch is missing or the file cannot be read (then we do not second-guess the driver).
    """
    spec = importlib.util.find_spec("torch")
    if spec is None or spec.origin is None:
        return None
    try:
        text = (Path(spec.origin).parent / "version.py").read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("cuda"):
            return "None" not in line.split("=", 1)[-1]
    return None


def _mps_available() -> bool:
    """Apple GPUs exist only on macOS; only there is torch imported to ask."""
    if sys.platform != "darwin":
        return False
    try:
        import torch

        return bool(torch.backends.mps.is_available())
    except Exception:
        return False


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _cpu_cores() -> int:
    """Cores this process may use (a container or affinity mask can allow fewer than the machine has)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def measure_matmul_gflops(device: Device = "cpu", seconds: float = 0.5) -> float | None:
    """Sustained matrix-multiply speed in GFLOP/s on the training device; None if torch is unusable."""
    try:
        import torch
    except ImportError:
        return None
    try:
        if device == "cuda":
            size, dtype = 4096, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            size, dtype = 1024, torch.float32
        a = torch.randn(size, size, dtype=dtype, device=device)
        b = torch.randn(size, size, dtype=dtype, device=device)
        sync = {"cuda": torch.cuda.synchronize, "mps": torch.mps.synchronize}.get(device, lambda: None)
        a @ b  # warm-up: kernel selection and thread pool start
        sync()
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            a @ b
            count += 1
            sync()
        elapsed = time.perf_counter() - start
        return round(2 * size**3 * count / elapsed / 1e9, 1)
    except Exception as exc:
        log.warning("Throughput probe failed: %s", exc)
        return None


# ---- cache -------------------------------------------------------------------------------------------

def cache_path() -> Path:
    return cache_dir() / CACHE_FILE


def _read_cache() -> tuple[HardwareProfile | None, str | None]:
    """(profile, None) when fresh, (None, None) when missing or stale, (None, note) when damaged."""
    path = cache_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None, None
    try:
        data = json.loads(text)
        if data["format"] != _CACHE_FORMAT:
            return None, None
        age = time.time() - float(data["created"])
        profile = HardwareProfile.from_dict(data["profile"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return None, f"The saved hardware profile at {path} was damaged; Studio measured the machine again."
    if not 0 <= age <= CACHE_TTL_S:
        return None, None
    profile.notes = []
    return profile, None


def _write_cache(profile: HardwareProfile) -> None:
    path = cache_path()
    payload = {"format": _CACHE_FORMAT, "created": time.time(), "profile": profile.to_dict()}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(payload, indent=2), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:  # a read-only or full disk only costs us the cache
        log.warning("Could not save the hardware profile: %s", exc)
        with contextlib.suppress(OSError):
            tmp.unlink()
