"""Published peak speeds and power of known accelerators, for time and carbon estimates.

Dense tensor-core figures (no sparsity), bf16/fp16 with fp32 accumulation, from the vendors' data sheets.
A measured matmul speed from the hardware probe always wins over this table.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.engine.hardware import HardwareProfile


@dataclass(frozen=True)
class DeviceSpeed:
    half_tflops: float  # bf16/fp16 dense
    fp32_tflops: float
    known: bool  # False: a guess, the interval widens


# Longest names first so "h100 pcie" wins over "h100".
_GPU_TABLE: list[tuple[str, float, float]] = [
    ("gb200", 2500.0, 80.0),
    ("b200", 2250.0, 75.0),
    ("h200", 989.0, 67.0),
    ("h100 pcie", 756.0, 51.0),
    ("h100", 989.0, 67.0),
    ("gh200", 989.0, 67.0),
    ("a100", 312.0, 19.5),
    ("a800", 312.0, 19.5),
    ("l40s", 362.0, 91.6),
    ("l40", 181.0, 90.5),
    ("a6000", 155.0, 38.7),
    ("rtx 6000 ada", 364.0, 91.1),
    ("a10g", 70.0, 31.2),
    ("a10", 125.0, 31.2),
    ("l4", 121.0, 30.3),
    ("v100", 125.0, 15.7),
    ("t4", 65.0, 8.1),
    ("rtx 5090", 209.0, 104.8),
    ("rtx 5080", 113.0, 56.3),
    ("rtx 4090", 165.0, 82.6),
    ("rtx 4080", 97.0, 48.7),
    ("rtx 4070 ti", 80.0, 40.1),
    ("rtx 4070", 58.0, 29.1),
    ("rtx 4060", 30.0, 15.1),
    ("rtx 3090", 71.0, 35.6),
    ("rtx 3080", 59.5, 29.8),
    ("rtx 3070", 40.6, 20.3),
    ("rtx 3060", 25.5, 12.7),
    ("rtx 2080", 40.0, 10.1),
]
UNKNOWN_GPU = DeviceSpeed(half_tflops=30.0, fp32_tflops=10.0, known=False)
# An Apple M-series GPU in the middle of the range (M2 Pro/M3 Pro class); measured speed replaces it.
MPS_GUESS = DeviceSpeed(half_tflops=7.0, fp32_tflops=7.0, known=False)
# Sustained fp32 matmul per CPU core with AVX2/AVX-512 (calibrated: NOTES.md reference run).
CPU_GFLOPS_PER_CORE = 64.0

# Watts drawn while training, when the GPU reports no power limit.
GPU_DEFAULT_W = 250.0
MPS_W = 35.0
CPU_BASE_W = 30.0
CPU_W_PER_CORE = 8.0
GPU_LOAD = 0.8  # share of the power limit drawn during LoRA training
HOST_W = 60.0  # CPU, memory and fans of a GPU machine


def gpu_speed(name: str) -> DeviceSpeed:
    lowered = name.lower()
    for key, half, fp32 in _GPU_TABLE:
        if key in lowered:
            return DeviceSpeed(half, fp32, True)
    return UNKNOWN_GPU


def peak_gflops(hardware: HardwareProfile, precision: str) -> tuple[float, bool]:
    """(GFLOP/s, whether it is known rather than guessed) for the training device at this precision."""
    gpu = hardware.gpu
    if gpu is not None:
        speed = gpu_speed(gpu.name)
        tflops = speed.fp32_tflops if precision == "fp32" else speed.half_tflops
        if hardware.matmul_gflops and not speed.known:
            return hardware.matmul_gflops, True
        return tflops * 1000.0, speed.known
    if hardware.matmul_gflops:
        return hardware.matmul_gflops, True
    if hardware.device == "mps":
        return MPS_GUESS.fp32_tflops * 1000.0, False
    return CPU_GFLOPS_PER_CORE * hardware.cpu_cores, False


def power_w(hardware: HardwareProfile) -> float:
    """Electric power of the machine while it trains."""
    gpu = hardware.gpu
    if gpu is not None:
        return (gpu.power_limit_w or GPU_DEFAULT_W) * GPU_LOAD + HOST_W
    if hardware.device == "mps":
        return MPS_W
    return min(250.0, CPU_BASE_W + CPU_W_PER_CORE * hardware.cpu_cores)
