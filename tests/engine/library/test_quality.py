"""The quality check on a real tiny run: base vs tuned on the held-out split, saved into the run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from studio.engine.errors import StudioError
from studio.engine.library.judge import JudgeSettings
from studio.engine.library.metrics import Tally
from studio.engine.library.quality import (
    REPORT_FILE,
    QualityReport,
    _tests_for,
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
    # Example by example: every answered example is better, the same or worse, and the verdict says how many.
    assert report.tally is not None and report.tally.metric == "token F1"
    assert report.tally.total == report.qa_tuned.examples == len(report.per_example)
    assert report.verdict.startswith(("Better than", "Worse than", "About the same")) and "of " in report.verdict
    assert "rough guide" in report.verdict  # a handful of held-out rows: said honestly
    assert {m.key for m in report.metrics} >= {"exact_match", "token_f1", "loss", "perplexity"}
    assert len(report.worse_examples) == min(report.tally.worse, 5)
    for worse in report.worse_examples:
        assert {"prompt", "base", "tuned", "metric", "base_score", "tuned_score"} <= set(worse)
        assert worse["tuned_score"] < worse["base_score"]
    assert report.judge is None  # off by default
    assert json.loads((library.parent.run_dir / REPORT_FILE).read_text())["verdict"] == report.verdict


def test_summaries_are_scored_with_rouge_l_and_an_unreachable_judge_is_a_message(library):
    config_file = library.child.run_dir / "config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "profile": "summarization"}))
    report = evaluate_quality(library.child, max_examples=4, qa_examples=4,
                              judge=JudgeSettings(kind="endpoint", url="http://127.0.0.1:9/v1"))
    assert report.tally is not None and report.tally.metric == "ROUGE-L" and report.tally.total == 4
    assert report.qa_base is None and "rouge_l" in {m.key for m in report.metrics}
    assert report.judge is not None and "could not be reached" in report.judge.error
    assert "ROUGE-L" in model_card_section(report) and load_report(library.child.run_dir) == report


def test_older_reports_still_load(tmp_path: Path):
    old = {"run_id": "r", "created": "2026-01-01T00:00:00Z", "eval_examples": 6, "verdict": "old words",
           "base": {"loss": 2.0, "perplexity": 7.389, "tokens": 30},
           "tuned": {"loss": 1.0, "perplexity": 2.718, "tokens": 30}, "qa_base": None, "qa_tuned": None,
           "samples": []}
    (tmp_path / REPORT_FILE).write_text(json.dumps(old))
    report = load_report(tmp_path)
    assert report is not None and report.tally is None and report.metrics == ()
    assert report.verdict == "The tuned model fits the held-out data better than the base (50% lower loss)."
    assert report.overall == "better"
    new = QualityReport("r", "now", 6, None, None, tally=Tally(1, 0, 5, "token F1"))
    assert new.overall == "same" and QualityReport.from_dict(new.to_dict()) == new
    tied = QualityReport("r", "now", 6, report.base, report.tuned, tally=Tally(0, 6, 0, "token F1"))
    assert tied.verdict == ("About the same as the base model: no difference on any of the 6 held-out examples "
                            "(by token F1). Only 6 examples were checked, so take this as a rough guide. The tuned "
                            "model fits the held-out data better than the base (50% lower loss).")


def test_code_tests_are_found_in_the_original_file(tmp_path: Path):
    data = tmp_path / "code.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"Write add{i}(a, b)."},
                          {"role": "assistant", "content": f"def add{i}(a, b):\n    return a + b"}],
             "test": f"assert add{i}(1, 2) == 3"} for i in range(3)]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    prompts = ["<|im_start|>user\nWrite add2(a, b).<|im_end|>", "Something else"]
    assert _tests_for(str(data), {}, prompts) == ["assert add2(1, 2) == 3", ""]
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps({"prompt": "Write f.", "completion": "def f(): pass"}) + "\n")
    assert _tests_for(str(plain), {}, ["Write f."]) == [""]


def test_quality_needs_a_finished_adapter(library):
    import shutil

    shutil.rmtree(library.child.run_dir / "final")
    shutil.rmtree(library.child.run_dir / "checkpoints")  # stopped before its first checkpoint
    with pytest.raises(StudioError) as info:
        evaluate_quality(library.child)
    assert info.value.code == "adapter_missing"


def test_code_that_ships_its_tests_is_scored_by_its_pass_rate(library, tmp_path: Path):
    """The whole check on code data with a tests column: base and tuned answers are run against each held-out
    example's own tests, and the pass rate is the verdict's measure, saved in quality.json and quality.md.
    (About 7 s on two CPU cores after the shared runs are trained: not marked slow.)"""
    data = tmp_path / "code.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"Write a Python function add{i}(a, b) that adds."},
                          {"role": "assistant", "content": f"def add{i}(a, b):\n    return a + b"}],
             "test": f"assert add{i}(1, 2) == 3"} for i in range(60)]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    config_file = library.child.run_dir / "config.json"
    config_file.write_text(json.dumps({**json.loads(config_file.read_text()), "dataset_path": str(data)}))

    report = evaluate_quality(library.child, max_examples=4, qa_examples=4)

    passed = next(m for m in report.metrics if m.key == "tests_passed")
    assert passed.label == "tests passed" and passed.higher_is_better and passed.examples == 4
    assert 0.0 <= passed.base <= 1.0 and 0.0 <= passed.tuned <= 1.0  # a pass rate for each model
    assert report.tally is not None and report.tally.metric == "tests passed" and report.tally.total == 4
    assert len(report.per_example) == 4
    assert all(e["base"] in (0.0, 1.0) and e["tuned"] in (0.0, 1.0) for e in report.per_example)  # pass or fail
    assert "(by tests passed)" in report.verdict
    assert report.qa_base is None  # code is not scored as question-answer text
    saved = json.loads((library.child.run_dir / REPORT_FILE).read_text())
    assert saved["verdict"] == report.verdict and saved["tally"]["metric"] == "tests passed"
    assert {"key": "tests_passed", "base": passed.base, "tuned": passed.tuned}.items() <= next(
        m for m in saved["metrics"] if m["key"] == "tests_passed").items()
    assert load_report(library.child.run_dir) == report
    card = (library.child.run_dir / "quality.md").read_text()
    assert f"| tests passed | {passed.base:.0%} | {passed.tuned:.0%} |" in card and "(by tests passed)" in card
