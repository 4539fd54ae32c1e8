"""datasets.check: the one dataset check the wizard and `studio validate` share."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.engine.datasets import DatasetOptions, check, sample_path
from studio.engine.progress import Callbacks, Cancelled


def test_a_sample_is_read_checked_measured_and_previewed(builtin_model_dir: Path):
    seen: list[float] = []
    found = check(sample_path("chatbot"), DatasetOptions(tokenizer_path=builtin_model_dir, profile="chatbot"),
                  task=Callbacks(lambda _message, fraction: seen.append(fraction)))
    assert found.report.usable and found.report.stats is not None
    assert found.inspection.kind == found.report.kind
    assert len(found.preview) == 3 and all(example.trained_text for example in found.preview)
    assert seen == sorted(seen) and seen[-1] == 1.0


def test_without_a_tokenizer_there_is_no_preview_nor_token_statistics():
    found = check(sample_path("chatbot"))
    assert found.report.usable and found.report.stats is None and found.preview == []


def test_a_stop_request_raises_the_one_cancel_error():
    with pytest.raises(Cancelled):
        check(sample_path("chatbot"), task=Callbacks(stop_requested=lambda: True))
