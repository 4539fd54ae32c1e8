"""When is the machine idle enough to start a run queued "when idle": no other training, and the GPU mostly
free (on a machine without one, the CPU mostly free). Readings and the rule are separate so the rule is
tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.engine.gpu_readings import GpuReader
from studio.engine.runs.registry import Registry

GPU_BUSY_PERCENT = 20.0
GPU_MEMORY_USED_PERCENT = 30.0
CPU_BUSY_PERCENT = 50.0


@dataclass(frozen=True)
class MachineLoad:
    training_runs: int
    cpu_percent: float
    gpu_util_percent: float | None = None
    gpu_mem_percent: float | None = None


def idle_verdict(load: MachineLoad) -> tuple[bool, str]:
    """(idle, why not) for one set of readings."""
    if load.training_runs:
        return False, "another training run is in progress"
    if load.gpu_util_percent is not None:
        if load.gpu_util_percent >= GPU_BUSY_PERCENT:
            return False, f"the GPU is {load.gpu_util_percent:.0f}% busy"
        if load.gpu_mem_percent is not None and load.gpu_mem_percent >= GPU_MEMORY_USED_PERCENT:
            return False, f"{load.gpu_mem_percent:.0f}% of the GPU's memory is in use"
        return True, ""
    if load.cpu_percent >= CPU_BUSY_PERCENT:
        return False, f"the processor is {load.cpu_percent:.0f}% busy"
    return True, ""


def read_load(registry: Registry, cpu_sample_s: float = 1.0) -> MachineLoad:
    import psutil

    training = len(registry.training_runs())
    gpu = GpuReader()
    readings = gpu.read() if gpu.present else {}
    return MachineLoad(
        training_runs=training,
        cpu_percent=psutil.cpu_percent(interval=cpu_sample_s),
        gpu_util_percent=readings.get("gpu_util_percent"),
        gpu_mem_percent=readings.get("gpu_mem_percent"),
    )


def machine_idle(registry: Registry) -> tuple[bool, str]:
    return idle_verdict(read_load(registry))
