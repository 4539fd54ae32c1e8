"""The quality check on a real tiny run: base vs tuned on the held-out split, saved into the run."""

from __future__ import annotations

import math

import pytest

from studio.engine.errors import StudioError
from studio.engine.library.quality import (
    REPORT_FILE,
    evaluate_quality,
    exact_match,
    load_report,
    model_card_section,
    split_prompt_answer,
    token_f1,
)
from studio.engine.progress import Callbacks


def test_answer_metrics():
    assert exact_match("The answer is 12.", "the answer is 12") == 1.0
    assert exact_match("13", "12") == 0.0
    assert token_f1("Pip says 12", "Pip says 13") == pytest.approx(2 / 3)
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0


def test_prompt_and_reference_come_from_the_learned_span():
    assert split_prompt_answer([1, 2, 3, 4, 5, 6], [0, 0, 1, 1, 0, 1]) == ([1, 2], [3, 4])
    assert split_prompt_answer([1, 2], [1, 1]) is None  # plain text: no prompt to answer
    assert split_prompt_answer([1, 2], [0, 0]) is None


def test_quality_report_on_a_trained_run(library):
    steps: list[float] = []
    report = evaluate_quality(library.parent, task=Callbacks(lambda _m, f: steps.append(f)))
    assert steps[-1] == 1.0 and steps == sorted(steps)
    assert report.base and report.tuned
    assert report.eval_examples > 0 and report.base.tokens == report.tuned.tokens > 0
    assert all(math.isfinite(x) for x in (report.base.loss, report.tuned.loss))
    assert report.tuned.loss < report.base.loss  # three steps on this pattern already help on unseen rows
    assert report.tuned.perplexity == pytest.approx(math.exp(report.tuned.loss), rel=1e-3)
    assert report.qa_base is not None and report.qa_tuned is not None  # Q&A profile: answers are scored
    assert 0.0 <= report.qa_tuned.token_f1 <= 1.0 and report.qa_tuned.examples == report.eval_examples
    assert report.samples and {"prompt", "reference", "base", "tuned"} <= set(report.samples[0])
    assert "Pip says" in report.samples[0]["reference"]
    saved = load_report(library.parent.run_dir)
    assert saved == report and (library.parent.run_dir / REPORT_FILE).exists()
    section = model_card_section(report)
    assert section.startswith("## Quality check") and "perplexity" in section and "token F1" in section


def test_quality_needs_a_finished_adapter(library):
    import shutil

    shutil.rmtree(library.child.run_dir / "final")
    shutil.rmtree(library.child.run_dir / "checkpoints")  # stopped before its first checkpoint
    with pytest.raises(StudioError) as info:
        evaluate_quality(library.child)
    assert info.value.code == "adapter_missing"
