"""The hardest-examples report file, its ordering, fingerprints and the next version's settings (no model)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.errors import StudioError
from studio.engine.library.hardest import (
    HardestReport,
    ScoredExample,
    example_fingerprint,
    load_report,
    next_version_config,
    save_report,
    score_run,
)
from studio.engine.progress import Callbacks
from studio.engine.runs.folders import create_run_dir
from studio.engine.training.example_loss import preview

CHAT = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}


def _report() -> HardestReport:
    examples = [
        ScoredExample("train", 4, "a" * 16, 0.5, 12, "<|im_start|>user\nfour"),
        ScoredExample("eval", 0, "b" * 16, 3.25, 7, "<|im_start|>user\nzero"),
        ScoredExample("train", 1, "c" * 16, 1.5, 30, "<|im_start|>user\none"),
    ]
    return HardestReport(run_id="r1", step=12, examples=examples,
                         splits={"train": {"scored": 2, "total": 9}, "eval": {"scored": 1, "total": 1}})


def test_report_orders_and_filters():
    report = _report()
    assert [e.loss for e in report.top(5)] == [3.25, 1.5, 0.5]
    assert [e.index for e in report.top(1, "train")] == [1]
    assert report.top(0) == []
    assert [e.tokens for e in report.sorted_by("tokens")] == [30, 12, 7]
    assert [e.index for e in report.sorted_by("index", descending=False)] == [0, 1, 4]
    assert report.cut_splits() == {"train": {"scored": 2, "total": 9}}
    with pytest.raises(ValueError, match="cannot sort by"):
        report.sorted_by("text")


def test_report_file_round_trips(tmp_path: Path):
    assert load_report(tmp_path) is None
    report = _report()
    path = save_report(tmp_path, report)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["version"] == 1 and data["run_id"] == "r1" and data["step"] == 12
    assert set(data["examples"][0]) == {"split", "index", "fingerprint", "loss", "tokens", "text"}
    again = load_report(tmp_path)
    assert again is not None and again.top(3) == report.top(3) and again.splits == report.splits
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("content", ["{not json", '{"version": 1, "examples": 3}', "[]",
                                     '{"version": 1, "run_id": "r", "step": 1, "splits": {}, '
                                     '"examples": [{"split": "train"}]}'])
def test_a_damaged_report_says_what_to_do(tmp_path: Path, content: str):
    run_dir = tmp_path / "run-7"
    run_dir.mkdir()
    (run_dir / "hardest.json").write_text(content, encoding="utf-8")
    with pytest.raises(StudioError) as caught:
        load_report(run_dir)
    error = caught.value
    assert error.code == "hardest_report_damaged" and "run-7" in error.what
    assert str(run_dir / "hardest.json") in error.why and "studio hardest run-7" in error.actions[0]


def test_a_report_from_a_newer_studio_is_refused_plainly(tmp_path: Path):
    (tmp_path / "hardest.json").write_text(json.dumps({**_report().to_dict(), "version": 9}), encoding="utf-8")
    with pytest.raises(StudioError) as caught:
        load_report(tmp_path)
    assert caught.value.code == "hardest_report_newer" and "newer Studio" in caught.value.what


def test_fingerprints_are_stable_across_processes_and_follow_the_content():
    here = example_fingerprint(CHAT)
    code = ("import json, sys; from studio.engine.library.hardest import example_fingerprint; "
            "print(example_fingerprint(json.loads(sys.argv[1])))")
    there = subprocess.run([sys.executable, "-c", code, json.dumps(CHAT)], capture_output=True, text=True,
                           check=True).stdout.strip()
    assert here == there and len(here) == 16 and int(here, 16) >= 0
    reordered = {"messages": [{"content": m["content"], "role": m["role"]} for m in CHAT["messages"]]}
    assert example_fingerprint(reordered) == here  # key order is not content
    changed = {"messages": [CHAT["messages"][0], {"role": "assistant", "content": "Hello?"}]}
    assert example_fingerprint(changed) != here
    assert example_fingerprint({"text": "Hi"}) != example_fingerprint({"text": "Hi "})


def test_next_version_config_adds_exclusions_once_and_starts_fresh():
    old_style = {"base_model": "builtin", "dataset_path": "/data.jsonl", "lora_r": 8}  # written before these fields
    config = TrainConfig.from_dict(old_style)
    assert config.exclude_examples == [] and config.compare_adapter is None and config.score_examples
    earlier = config.updated(exclude_examples=["f1"], init_adapter="/runs/a/final/adapter",
                             compare_adapter="/runs/b/final/adapter")
    following = next_version_config(earlier.model_dump(mode="json"), ["f2", "f1", "f3", "f2"])
    assert following.exclude_examples == ["f1", "f2", "f3"]
    assert following.init_adapter is None and following.compare_adapter is None and following.lora_r == 8
    assert next_version_config(following, []).exclude_examples == ["f1", "f2", "f3"]


def test_score_run_needs_a_finished_run(tmp_path: Path):
    run_dir = create_run_dir(TrainConfig(), "unfinished", root=tmp_path)
    with pytest.raises(StudioError) as caught:
        score_run(run_dir)
    assert caught.value.code == "adapter_missing" and "studio resume unfinished" in caught.value.actions[0]


def test_preview_keeps_the_answer_end():
    text = "<|im_start|>user\nQuestion?<|im_end|>\n<|im_start|>assistant\n" + "word " * 200 + "THE END<|im_end|>"
    short = preview(text, 80)
    assert len(short) <= 80 and short.startswith("user Question?") and short.endswith("THE END")
    assert "<|" not in short and "\n" not in short
    tail = preview(text, 40, keep_start=False)
    assert 30 < len(tail) <= 40 and tail.startswith("… ") and tail.endswith("THE END")
    assert preview("<|im_start|>user\n  hi  <|im_end|>") == "user hi"


def test_cancelling_score_run_saves_nothing(library):
    report = library.parent.run_dir / "hardest.json"
    before = report.read_text(encoding="utf-8")
    with pytest.raises(StudioError) as caught:
        score_run(library.parent.run_dir, Callbacks(stop_requested=lambda: True))
    assert caught.value.code == "cancelled" and report.read_text(encoding="utf-8") == before
