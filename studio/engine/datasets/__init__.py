"""Datasets: read any reasonable file, validate it in plain language, normalize it, and measure it in tokens.

`check(path, options)` is the dataset check that the wizard and `studio validate` share; DatasetOptions
holds the settings that every step takes. Normalized examples are conversations
{"messages": [{"role", "content"}, ...]} or plain text {"text": ...}.
Nothing here imports torch or transformers at import time; the tokenizer is loaded when first needed.
"""

from __future__ import annotations

from studio.engine.datasets.inspection import Inspection, inspect_file
from studio.engine.datasets.issues import Issue
from studio.engine.datasets.options import DatasetOptions
from studio.engine.datasets.prepare import PreparedDataset, prepare_dataset, unusable_error
from studio.engine.datasets.preview import PreviewExample, render_preview
from studio.engine.datasets.report import SplitProposal, ValidationReport
from studio.engine.datasets.samples import SAMPLE_DATASETS, sample_path
from studio.engine.datasets.schemas import ROLES, parse_mapping
from studio.engine.datasets.stats import TokenStats, estimate_steps_per_epoch
from studio.engine.datasets.validate import iter_examples, validate_file
from studio.engine.datasets.workflow import DatasetCheck, check

__all__ = [
    "ROLES",
    "SAMPLE_DATASETS",
    "DatasetCheck",
    "DatasetOptions",
    "Inspection",
    "Issue",
    "PreparedDataset",
    "PreviewExample",
    "SplitProposal",
    "TokenStats",
    "ValidationReport",
    "check",
    "estimate_steps_per_epoch",
    "inspect_file",
    "iter_examples",
    "parse_mapping",
    "prepare_dataset",
    "render_preview",
    "sample_path",
    "unusable_error",
    "validate_file",
]
