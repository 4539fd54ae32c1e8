"""The settings that decide how a dataset is read, checked and split: one value for every step.

Validation, preparation for training and the dataset check all take a DatasetOptions, so the settings
travel together, and a cache key built from them covers everything that changes the result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DatasetOptions:
    """How to read and measure one dataset file.

    mapping: which column plays which role ({"question": "user", ...}); None lets Studio work it out.
    tokenizer_path: the model folder whose tokenizer measures the examples; None skips token statistics.
    max_length: the longest example in tokens that training keeps whole; None skips that check.
    profile: the use case whose advice applies (chatbot, qa, domain ...); None picks one from the data.
    eval_fraction, seed: the share held out for validation, and the seed that picks it.
    """

    mapping: dict[str, str] | None = None
    tokenizer_path: str | Path | None = None
    max_length: int | None = None
    profile: str | None = None
    eval_fraction: float = 0.1
    seed: int = 42
