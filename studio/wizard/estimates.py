"""Plain-language estimates and the two alternatives offered at review. No Qt: pure and unit-tested.

Alternatives are small, explainable changes to the chosen config (a person must be able to see what
differs), and the planner's `estimate` gives each one its own time, memory, cost and carbon. Cost and
carbon on the user's own computer come from the electricity price and grid intensity in Settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from studio.engine.config import TrainConfig
from studio.engine.energy import EnergySettings, energy_text, grams_text, planned_footprint


@dataclass(frozen=True)
class Alternative:
    title: str
    summary: str
    config: TrainConfig


def duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def memory(mb: float) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.0f} MB"


grams = grams_text


def money(amount: float) -> str:
    """A cloud machine's price, which the providers quote in US dollars."""
    return f"${amount:.2f}"


def interval_text(interval: Any, fmt: Any) -> str:
    """'about 12 min (8 min to 20 min)': the expected value first, the range after it."""
    return f"about {fmt(interval.expected)} ({fmt(interval.low)} to {fmt(interval.high)})"


FIGURES = ("Training time", "Peak memory", "Energy", "Cost", "Carbon")


def describe(estimates: Any, energy: EnergySettings, device: str = "cpu", measured: bool = False) -> dict[str, str]:
    """The figures the wizard shows, keyed by label (FIGURES). `measured`: the time comes from an earlier
    run on this computer rather than from the planner's model of it."""
    time = interval_text(estimates.total_time_s, duration)
    if measured:
        time += ", from your earlier runs on this computer"
    footprint = planned_footprint(estimates.total_time_s, estimates.power_w, device, energy)
    lines = {
        "Training time": time,
        "Peak memory": interval_text(estimates.peak_memory_mb, memory),
        "Energy": f"{interval_text(footprint.energy_kwh, energy_text)} at about {estimates.power_w:.0f} W",
        "Carbon": f"{interval_text(footprint.co2_g, grams)} CO2 at {energy.grid_g_per_kwh:.0f} g per kWh",
    }
    if estimates.cost is not None:  # a rented machine: its hourly price, electricity included
        lines["Cost"] = interval_text(estimates.cost, money)
    elif energy.free:
        lines["Cost"] = "Free: the electricity price in Settings is zero"
    else:
        lines["Cost"] = (f"{interval_text(footprint.cost, energy.money)} at "
                         f"{energy.money(energy.price_per_kwh)} per kWh")
    return {label: lines[label] for label in FIGURES}


def describe_for_machine(estimates: Any, config: TrainConfig, hardware: Any, energy: EnergySettings) -> dict[str, str]:
    """describe() for a config planned on this computer: says when the time comes from a measured run."""
    from studio.engine.planner.calibration import default_store
    from studio.engine.planner.estimate import calibration_fields

    measured = default_store().lookup(hardware, calibration_fields(config)) is not None
    return describe(estimates, energy, hardware.device, measured)


def alternatives(config: TrainConfig) -> list[Alternative]:
    """A faster/cheaper variant and a higher-quality one, each a few named changes away from `config`."""
    fast_epochs = max(0.5, round(config.num_epochs / 2, 1))
    fast_r = max(4, config.lora_r // 2)
    faster = config.updated(
        num_epochs=fast_epochs,
        lora_r=fast_r,
        lora_alpha=fast_r * 2,
        max_length=max(128, min(config.max_length, 512)),
    )
    good_r = min(256, config.lora_r * 2)
    better = config.updated(
        num_epochs=min(100.0, round(config.num_epochs * 1.5, 1)),
        lora_r=good_r,
        lora_alpha=good_r * 2,
        eval_fraction=max(config.eval_fraction, 0.1),
    )
    return [
        Alternative(
            "Faster and cheaper",
            f"{fast_epochs:g} passes instead of {config.num_epochs:g}, adapter rank {fast_r}, "
            f"examples cut at {faster.max_length} tokens.",
            faster,
        ),
        Alternative(
            "Higher quality",
            f"{better.num_epochs:g} passes instead of {config.num_epochs:g}, adapter rank {good_r}.",
            better,
        ),
    ]
