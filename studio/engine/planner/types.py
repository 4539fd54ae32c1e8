"""The planner's plain data: inputs it reads (dataset statistics) and what it returns (plan, estimates)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from studio.engine.config import TrainConfig


@dataclass(frozen=True)
class Interval:
    """An estimate with its uncertainty: the planner is a model, not a measurement."""

    low: float
    expected: float
    high: float

    @classmethod
    def around(cls, expected: float, low_factor: float, high_factor: float) -> Interval:
        return cls(expected * low_factor, expected, expected * high_factor)

    def scaled(self, factor: float) -> Interval:
        return Interval(self.low * factor, self.expected * factor, self.high * factor)

    def to_dict(self) -> dict[str, float]:
        return {"low": round(self.low, 3), "expected": round(self.expected, 3), "high": round(self.high, 3)}


@dataclass(frozen=True)
class DatasetStats:
    """Token counts of a training file, measured with the model's tokenizer by the dataset validator."""

    n_examples: int
    p50_tokens: int
    p90_tokens: int
    p99_tokens: int
    max_tokens: int
    total_tokens: int

    @property
    def mean_tokens(self) -> float:
        return self.total_tokens / max(1, self.n_examples)


@dataclass(frozen=True)
class Estimates:
    peak_memory_mb: Interval
    time_per_epoch_s: Interval
    total_time_s: Interval
    cost: Interval | None
    carbon_g: Interval
    # Supporting figures the wizard shows next to the estimates.
    memory_budget_mb: float = 0.0
    tokens_per_s: float = 0.0
    steps_per_epoch: int = 0
    total_steps: int = 0
    seconds_per_step: float = 0.0
    power_w: float = 0.0
    memory_breakdown_mb: dict[str, float] = field(default_factory=dict)

    @property
    def fits(self) -> bool:
        return self.peak_memory_mb.expected <= self.memory_budget_mb

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name, value in asdict(self).items():
            attr = getattr(self, name)
            data[name] = attr.to_dict() if isinstance(attr, Interval) else value
        data["fits"] = self.fits
        return data


@dataclass(frozen=True)
class Plan:
    config: TrainConfig
    explanations: dict[str, str]
    estimates: Estimates
    warnings: list[str]
    fits: bool
    alternatives: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config.model_dump(mode="json"),
            "explanations": dict(self.explanations),
            "estimates": self.estimates.to_dict(),
            "warnings": list(self.warnings),
            "fits": self.fits,
            "alternatives": list(self.alternatives),
        }
