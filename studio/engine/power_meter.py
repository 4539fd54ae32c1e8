"""The energy a run has used so far, from the machine's own power readings where it has them.

The monitor samples the machine every second and hands each reading here: the CPU packages' power from
RAPL and the GPU's from NVML when those can be read, otherwise an estimate from the load (CPU use times a
TDP-like figure from the core count, GPU use times its power limit). Whatever was estimated is said so,
never shown as a measurement. The total is kept in the run folder, so a resumed run keeps counting and a
finished one shows what it used.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

from studio.engine.planner.devices import CPU_BASE_W, CPU_W_PER_CORE, GPU_DEFAULT_W

log = logging.getLogger(__name__)

ENERGY_FILE = "energy.json"
ESTIMATE_SPREAD = 0.5  # a load-based estimate is good to about ±50%
MAX_GAP_S = 30.0  # a longer gap between readings (a suspended laptop) is not counted as drawn power


def cpu_tdp_w(cores: int) -> float:
    """A TDP-like figure for a CPU with this many cores: the planner's own power figure for a CPU."""
    return min(250.0, CPU_BASE_W + CPU_W_PER_CORE * max(1, cores))


@dataclass(frozen=True)
class PowerSample:
    """One reading of the machine: a measured figure is None where the hardware does not report it."""

    t: float  # seconds, monotonic
    cpu_percent: float
    cpu_power_w: float | None = None  # RAPL
    gpu_present: bool = False
    gpu_util_percent: float | None = None
    gpu_power_w: float | None = None  # NVML
    gpu_power_limit_w: float | None = None


@dataclass(frozen=True)
class MeterReading:
    """What the dashboard shows: power now, energy so far, and whether any part of it is an estimate."""

    power_w: float
    energy_kwh: float
    estimated: bool
    sources: str  # plain words: "CPU measured (RAPL), GPU measured (NVML)"


class EnergyMeter:
    """Integrates the samples' power over time into kWh; `start_kwh` continues a resumed run's total."""

    def __init__(self, cpu_cores: int, start_kwh: float = 0.0, start_estimated: bool = False) -> None:
        self.cpu_tdp_w = cpu_tdp_w(cpu_cores)
        self.energy_kwh = start_kwh
        self.estimated = start_estimated  # once part of the total is estimated, all of it is labelled so
        self._last_t: float | None = None
        self._reading: MeterReading | None = None

    @property
    def reading(self) -> MeterReading | None:
        """The latest reading; None before any sample."""
        return self._reading

    def add(self, sample: PowerSample) -> MeterReading:
        cpu_measured = sample.cpu_power_w is not None
        cpu_w = sample.cpu_power_w if sample.cpu_power_w is not None else (
            self.cpu_tdp_w * min(max(sample.cpu_percent, 0.0), 100.0) / 100.0)
        parts = ["CPU measured (RAPL)" if cpu_measured else "CPU estimated from its load"]
        gpu_w, gpu_measured = 0.0, True
        if sample.gpu_present:
            if sample.gpu_power_w is not None:
                gpu_w = sample.gpu_power_w
                parts.append("GPU measured (NVML)")
            else:
                gpu_measured = False
                gpu_w = (sample.gpu_power_limit_w or GPU_DEFAULT_W) * (sample.gpu_util_percent or 0.0) / 100.0
                parts.append("GPU estimated from its load")
        power = cpu_w + gpu_w
        estimated_now = not (cpu_measured and gpu_measured)
        if self._last_t is not None and 0.0 < sample.t - self._last_t <= MAX_GAP_S:
            self.energy_kwh += power * (sample.t - self._last_t) / 3.6e6
            self.estimated = self.estimated or estimated_now
        elif self._last_t is None:
            self.estimated = self.estimated or estimated_now
        self._last_t = sample.t
        self._reading = MeterReading(power, self.energy_kwh, self.estimated, ", ".join(parts))
        return self._reading


@dataclass(frozen=True)
class RunEnergy:
    """The energy total kept beside a run's events."""

    energy_kwh: float
    estimated: bool
    sources: str


def save_run_energy(run_dir: Path, energy: RunEnergy) -> None:
    """Atomic, like every file Studio keeps; a failure is logged (the figures are a nicety, not the run)."""
    target = run_dir / ENERGY_FILE
    try:
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(energy)), encoding="utf-8")
        tmp.replace(target)
    except OSError as exc:
        log.warning("Could not save the run's energy figures to %s: %s", target, exc)


def load_run_energy(run_dir: Path) -> RunEnergy | None:
    """The saved total, or None when the run has none (older runs, runs trained from the command line)."""
    try:
        data = json.loads((run_dir / ENERGY_FILE).read_text(encoding="utf-8"))
        return RunEnergy(float(data["energy_kwh"]), bool(data["estimated"]), str(data.get("sources", "")))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, KeyError) as exc:
        log.warning("Ignoring damaged energy figures in %s: %s", run_dir, exc)
        return None
