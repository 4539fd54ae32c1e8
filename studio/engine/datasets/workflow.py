"""The dataset check: the one workflow behind the wizard's data page and `studio validate`.

What Studio understood (the head of the file: format, columns, layout), every problem and its fix, token
statistics when a tokenizer is given, and a preview of what the model will be trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from studio.engine.datasets.inspection import Inspection, inspect_file
from studio.engine.datasets.options import DatasetOptions
from studio.engine.datasets.preview import PreviewExample, render_preview
from studio.engine.datasets.report import ValidationReport
from studio.engine.datasets.validate import iter_examples, validate_file
from studio.engine.progress import QUIET, Span, TaskContext

PREVIEW_EXAMPLES = 3


@dataclass(frozen=True)
class DatasetCheck:
    """What one check found: the file's head as Studio read it, the full report, and the preview."""

    inspection: Inspection
    report: ValidationReport
    preview: list[PreviewExample]


def check(
    path: str | Path,
    options: DatasetOptions = DatasetOptions(),
    *,
    task: TaskContext = QUIET,
    preview: int = PREVIEW_EXAMPLES,
) -> DatasetCheck:
    """Check `path` as `options` say; `preview` usable examples are rendered when a tokenizer is given."""
    steps = Span(task)
    steps.report("Reading the file", 0.0)
    inspection = inspect_file(path, mapping=options.mapping)
    report = validate_file(path, options, task=steps.sub(0.02, 0.95))
    examples: list[PreviewExample] = []
    if preview and report.usable and options.tokenizer_path is not None:
        steps.report("Rendering a preview", 0.97)
        rows = list(islice(iter_examples(path, mapping=options.mapping), preview))
        examples = render_preview(rows, options.tokenizer_path, n=preview)
    steps.report("Done", 1.0)
    return DatasetCheck(inspection, report, examples)
