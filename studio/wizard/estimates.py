"""Plain-language estimates and the two alternatives offered at review. No Qt: pure and unit-tested.

Alternatives are small, explainable changes to the chosen config (a person must be able to see what
differs), and the planner's `estimate` gives each one its own time, memory, cost and carbon.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from studio.engine.config import TrainConfig


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


def grams(g: float) -> str:
    return f"{g / 1000:.2f} kg" if g >= 1000 else f"{g:.0f} g" if g >= 10 else f"{g:.1f} g"


def money(amount: float) -> str:
    return f"${amount:.2f}"


def interval_text(interval: Any, fmt: Any) -> str:
    """'about 12 min (8 min to 20 min)': the expected value first, the range after it."""
    return f"about {fmt(interval.expected)} ({fmt(interval.low)} to {fmt(interval.high)})"


def describe(estimates: Any) -> dict[str, str]:
    """The four figures the wizard shows, keyed by label."""
    lines = {
        "Training time": interval_text(estimates.total_time_s, duration),
        "Peak memory": interval_text(estimates.peak_memory_mb, memory),
        "Carbon": interval_text(estimates.carbon_g, grams),
    }
    lines["Cost"] = (
        interval_text(estimates.cost, money) if estimates.cost is not None else "free (your own computer)"
    )
    return lines


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
