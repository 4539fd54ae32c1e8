"""Token statistics of a dataset: what the planner needs to choose max length, epochs and batch size."""

from __future__ import annotations

import math
from array import array
from dataclasses import asdict, dataclass, field
from typing import Any

HISTOGRAM_BINS = 20


@dataclass
class TokenStats:
    """Per-example token lengths summarized; `over_max_length` counts examples that would be cut."""

    tokenizer: str
    examples: int
    total_tokens: int
    mean: float
    min: int
    p50: int
    p90: int
    p99: int
    max: int
    histogram: dict[str, list[int]] = field(default_factory=dict)
    max_length: int | None = None
    over_max_length: int = 0
    over_max_length_share: float = 0.0
    truncated_tokens: int = 0
    suggested_max_length: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TokenStats:
        return cls(**data)


def summarize(lengths: array[int], tokenizer: str, max_length: int | None) -> TokenStats | None:
    """Percentiles, a histogram and the share over `max_length` of the given lengths."""
    import numpy as np

    if not lengths:
        return None
    values = np.frombuffer(lengths, dtype=np.uint32).astype(np.int64)
    p50, p90, p99 = (int(v) for v in np.percentile(values, [50, 90, 99], method="inverted_cdf"))
    top = int(values.max())
    edges = _bin_edges(top)
    counts, _ = np.histogram(values, bins=edges)
    over = int((values > max_length).sum()) if max_length else 0
    truncated = int(np.clip(values - max_length, 0, None).sum()) if max_length else 0
    return TokenStats(
        tokenizer=tokenizer,
        examples=int(values.size),
        total_tokens=int(values.sum()),
        mean=round(float(values.mean()), 1),
        min=int(values.min()),
        p50=p50,
        p90=p90,
        p99=p99,
        max=top,
        histogram={"edges": [int(edge) for edge in edges], "counts": [int(count) for count in counts]},
        max_length=max_length,
        over_max_length=over,
        over_max_length_share=round(over / values.size, 4),
        truncated_tokens=truncated,
        suggested_max_length=suggest_max_length(p99),
    )


def _bin_edges(top: int) -> list[int]:
    """Round-numbered bins from 0 to just above the longest example."""
    raw = max(1.0, top / HISTOGRAM_BINS)
    magnitude = 10 ** math.floor(math.log10(raw))
    width = next(step * magnitude for step in (1, 2, 2.5, 5, 10) if step * magnitude >= raw)
    width = max(1, math.ceil(width))
    bins = max(1, math.ceil((top + 1) / width))
    return [index * width for index in range(bins + 1)]


def suggest_max_length(p99: int) -> int:
    """The next multiple of 64 above the 99th percentile: almost nothing is cut, little padding is wasted."""
    return max(64, int(math.ceil(p99 / 64) * 64))


def estimate_steps_per_epoch(n_examples: int, micro_batch_size: int, gradient_accumulation: int) -> int:
    """Optimizer steps in one pass over the data (the last partial step counts)."""
    if n_examples <= 0:
        return 0
    return math.ceil(n_examples / (max(1, micro_batch_size) * max(1, gradient_accumulation)))
