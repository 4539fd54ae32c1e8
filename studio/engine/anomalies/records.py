"""The plain records that flow through anomaly detection: metrics in, findings out.

They are deliberately free of torch and transformers so the worker, the CLI, the GUI and the tests can
build them from anything (a Trainer log, a replayed events.jsonl, a synthetic numpy stream).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["info", "warning", "critical"]

NON_FINITE = "nan"
LOSS_SPIKE = "loss_spike"
DIVERGENCE = "divergence"
GRAD_EXPLOSION = "grad_explosion"
OVERFITTING = "overfitting"
PLATEAU = "plateau"
MEMORY_PRESSURE = "memory_pressure"
THROUGHPUT_COLLAPSE = "throughput_collapse"
OUT_OF_MEMORY = "out_of_memory"
MARGIN_COLLAPSE = "margin_collapse"
ACCURACY_AT_CHANCE = "accuracy_at_chance"
KL_DRIFT = "kl_drift"

PREFERENCE_OBJECTIVES = frozenset({"dpo", "orpo", "kto"})
"""The objectives whose trainers (TRL's DPO, ORPO and KTO) log rewards, and get the preference rules."""
REFERENCE_OBJECTIVES = frozenset({"dpo", "kto"})
"""The preference objectives that train against a reference model (ORPO has none), so can drift from it."""


@dataclass(frozen=True)
class StepMetrics:
    """One optimizer step as the worker saw it; any reading may be missing (None)."""

    step: int
    loss: float | None = None
    grad_norm: float | None = None
    lr: float | None = None
    tokens_per_s: float | None = None
    gpu_mem_frac: float | None = None
    ram_frac: float | None = None
    # Preference tuning only (TRL's `rewards/margins`, `rewards/accuracies`, `rewards/chosen` and KTO's `kl`):
    reward_margin: float | None = None
    """Mean reward of the chosen answer minus the rejected one (beta-scaled log-probability ratios)."""
    reward_accuracy: float | None = None
    """Fraction of pairs whose chosen answer got the higher reward (0.5 is a coin flip)."""
    reward_chosen: float | None = None
    """beta x (log-probability of the chosen answers under the model - under the reference model)."""
    kl: float | None = None
    """KTO's estimate of how far the model has moved from the reference, in nats (0 at the start)."""


@dataclass(frozen=True)
class EvalMetrics:
    """One evaluation on the held-out split; train_loss is the training loss at that time, if known."""

    step: int
    eval_loss: float
    train_loss: float | None = None


@dataclass(frozen=True)
class Finding:
    """An anomaly, explained for a person, with the numbers behind it."""

    kind: str
    severity: Severity
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    step: int = 0

    def __post_init__(self) -> None:
        # Events are written with allow_nan=False: NaN and Inf must survive as text, not crash the writer.
        object.__setattr__(self, "evidence", json_safe(self.evidence))


def finite(value: object) -> float | None:
    """The value as a finite float, or None for anything else (None, NaN, Inf, text, garbage)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    try:
        number = float(value)
    except (OverflowError, ValueError):
        return None
    return number if math.isfinite(number) else None


def is_non_finite(value: object) -> bool:
    """True for NaN and +/-Inf numbers (not for a missing reading)."""
    real = isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral)
    return real and finite(value) is None


def json_safe(value: Any) -> Any:
    """A copy that json.dumps(allow_nan=False) accepts: NaN/Inf become the strings 'NaN'/'Infinity'."""
    if is_non_finite(value):
        return "NaN" if math.isnan(float(value)) else ("Infinity" if float(value) > 0 else "-Infinity")
    if isinstance(value, numbers.Real) and not isinstance(value, bool | int | float):
        return int(value) if isinstance(value, numbers.Integral) else float(value)  # numpy scalars
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def fmt(value: float) -> str:
    """A number as a person reads it: three significant digits, no scientific notation for usual losses."""
    return f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
