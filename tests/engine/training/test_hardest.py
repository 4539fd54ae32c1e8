"""Hardest examples through the real worker: corrupted rows rise to the top of the report, the top N follow
each evaluation, excluded rows leave the next version, and an earlier version is measured on the same data.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.control import ControlCommand
from studio.engine.library.hardest import example_fingerprint, load_report, next_version_config, score_run
from studio.engine.progress import Callbacks
from studio.engine.runs.folders import create_run_dir, final_adapter_dir
from studio.engine.runs.registry import Registry
from tests.engine.training.worker_runs import read_events, run_worker_process, write_chat_jsonl


def _completed(run_dir: Path) -> dict:
    events = read_events(run_dir)
    assert events[-1]["event"] == "completed", events[-1]
    return events[-1]


def _train(run_dir: Path) -> list[dict]:
    done = run_worker_process(run_dir, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return read_events(run_dir)


def _corrupt(path: Path, rows: int, bad: int, seed: int) -> set[str]:
    """Swap `bad` answers for random letters; returns the fingerprints of the corrupted rows."""
    rng = random.Random(seed)
    examples = [json.loads(line) for line in path.read_text().splitlines()]
    fingerprints = set()
    for index in rng.sample(range(rows), bad):
        words = ("".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9)))
                 for _ in range(10))
        examples[index]["messages"][-1]["content"] = " ".join(words)
        fingerprints.add(example_fingerprint(examples[index]))
    path.write_text("\n".join(json.dumps(example) for example in examples) + "\n", encoding="utf-8")
    return fingerprints


@pytest.mark.slow
def test_corrupted_rows_top_the_report_of_the_builtin_model(builtin_model_dir: Path, tmp_path: Path):
    data = write_chat_jsonl(tmp_path / "chat.jsonl", rows=60)
    corrupted = _corrupt(data, rows=60, bad=5, seed=7)
    config = TrainConfig.from_dict({
        "base_model": "builtin", "dataset_path": str(data), "max_steps": 4, "micro_batch_size": 8,
        "gradient_accumulation": 1, "max_length": 128, "learning_rate": 1e-3, "lr_scheduler": "constant",
        "warmup_ratio": 0.0, "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "eval_fraction": 0.1,
        "eval_every_steps": None, "checkpoint_every_steps": 100,
    })
    run_dir = create_run_dir(config, "corrupted", root=tmp_path / "runs")
    _train(run_dir)

    report = load_report(run_dir)
    assert report is not None and report.step == 4
    assert report.splits == {"train": {"scored": 54, "total": 54}, "eval": {"scored": 6, "total": 6}}
    assert {e.fingerprint for e in report.examples} >= corrupted
    for split in ("train", "eval"):
        bad_here = [e for e in report.examples if e.split == split and e.fingerprint in corrupted]
        top = report.top(len(bad_here), split)
        assert {e.fingerprint for e in top} == {e.fingerprint for e in bad_here}, [
            (e.loss, e.fingerprint in corrupted) for e in report.top(8, split)]
    worst = report.top(1)[0]
    assert worst.fingerprint in corrupted and "<|im_start|>assistant" in worst.text
    assert worst.loss > 2 * report.top(6)[-1].loss  # a clear gap, not a photo finish


def test_hardest_events_follow_each_evaluation_and_score_run_builds_the_report(make_run):
    run_dir = make_run("events", max_steps=4, eval_every_steps=2, hardest_top_n=3, score_examples=False)
    events = _train(run_dir)
    assert not (run_dir / "hardest.json").exists()
    assert "final_eval_loss" not in _completed(run_dir)["metrics"]  # nothing scored after training

    told = [e for e in events if e["event"] != "heartbeat"]
    evals = [i for i, e in enumerate(told) if e["event"] == "eval"]
    assert [told[i]["step"] for i in evals] == [2, 4]
    eval_size = next(e for e in events if e["event"] == "started")["eval_examples"]
    for i in evals:
        hardest = told[i + 1]
        assert hardest["event"] == "hardest" and hardest["step"] == told[i]["step"] and hardest["split"] == "eval"
        losses = [example["loss"] for example in hardest["examples"]]
        assert len(losses) == min(3, eval_size) and losses == sorted(losses, reverse=True)
        assert all(len(example["fingerprint"]) == 16 and example["tokens"] > 0 and example["preview"]
                   for example in hardest["examples"])

    seen: list[tuple[str, float]] = []
    report = score_run(run_dir, Callbacks(lambda message, fraction: seen.append((message, fraction))))
    assert seen[-1] == ("Done", 1.0) and [f for _m, f in seen] == sorted(f for _m, f in seen)
    assert load_report(run_dir) == report and report.step == 4
    assert set(report.splits) == {"train", "eval"} and report.splits["eval"]["total"] == eval_size
    assert [e.loss for e in report.examples] == sorted((e.loss for e in report.examples), reverse=True)
    # one implementation: the report scores the held-out rows as the last evaluation (of the same weights) did
    last = [e for e in events if e["event"] == "hardest"][-1]["examples"]
    again = {e.fingerprint: e.loss for e in report.examples if e.split == "eval"}
    assert [again[example["fingerprint"]] for example in last] == pytest.approx(
        [example["loss"] for example in last], abs=1e-4)


def test_next_version_leaves_out_the_picked_rows_and_measures_the_previous_one(make_run, tmp_path: Path):
    first = make_run("first", eval_every_steps=4, hardest_top_n=0)
    events = _train(first)
    assert not any(e["event"] == "hardest" for e in events)  # top N of 0 turns the live report off
    started = next(e for e in events if e["event"] == "started")
    report = load_report(first)
    assert report is not None
    picked = [e.fingerprint for e in report.top(3, "train")] + [report.top(1, "eval")[0].fingerprint]
    place = {e.fingerprint: (e.split, e.index) for e in report.examples}

    record = Registry().get(first.name)
    config = next_version_config(record.config, picked)
    assert config.exclude_examples == picked and config.compare_adapter is None
    config = config.updated(compare_adapter=str(final_adapter_dir(first)))  # as the auto-retraining sets it
    second = create_run_dir(config, "second", root=tmp_path / "runs")
    events = _train(second)

    again = next(e for e in events if e["event"] == "started")
    assert again["train_examples"] == started["train_examples"] - 3
    assert again["eval_examples"] == started["eval_examples"] - 1
    assert again["excluded_examples"] == 4
    report_two = load_report(second)
    assert report_two is not None and not {e.fingerprint for e in report_two.examples} & set(picked)
    assert all(place[e.fingerprint] == (e.split, e.index) for e in report_two.examples)  # rows keep their place
    metrics = _completed(second)["metrics"]
    # the first version on the second one's held-out rows (its own held-out rows minus the excluded one)
    kept = [e for e in report.examples if e.split == "eval" and e.fingerprint not in picked]
    expected = sum(e.loss * e.tokens for e in kept) / sum(e.tokens for e in kept)
    assert metrics["baseline_eval_loss"] == pytest.approx(expected, rel=1e-4)
    assert "baseline_error" not in metrics and metrics["final_eval_loss"] > 0
    held = [e for e in report_two.examples if e.split == "eval"]
    assert metrics["final_eval_loss"] == pytest.approx(
        sum(e.loss * e.tokens for e in held) / sum(e.tokens for e in held), rel=1e-4)


@pytest.mark.parametrize("kind", ["missing", "other-base"])
def test_an_adapter_that_cannot_be_compared_is_reported_and_the_run_completes(make_run, tmp_path: Path, kind: str):
    folder = tmp_path / kind
    if kind == "other-base":
        folder.mkdir()
        (folder / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "someone/other-model",
                                                                "peft_type": "LORA", "r": 8}))
    run_dir = make_run(f"baseline-{kind}", max_steps=2, score_examples=False, compare_adapter=str(folder))
    _train(run_dir)
    metrics = _completed(run_dir)["metrics"]
    assert metrics["baseline_eval_loss"] is None
    expected = f"not found: {folder}" if kind == "missing" else "another base model (someone/other-model)"
    assert expected in metrics["baseline_error"], metrics["baseline_error"]
    assert metrics["final_eval_loss"] > 0  # this run's own loss on the same rows is measured all the same
    assert Registry().get(run_dir.name).status == "completed"
    assert (final_adapter_dir(run_dir) / "adapter_config.json").exists()


def test_a_stop_while_scoring_ends_it_without_the_report(make_run, tiny_model_dir: Path):
    """In process: what the worker does once the adapter is saved, with a stop already waiting for it."""
    from types import SimpleNamespace

    from studio.engine.training.backends.hf import HFBackend
    from studio.engine.training.control_channel import ControlChannel
    from studio.engine.training.scoring import score_after_training
    from studio.engine.training.setup import load_training_splits
    from studio.engine.training.sinks import EventEmitter, MemorySink

    run_dir = make_run("stop-scoring", compare_adapter="/nowhere")
    config = TrainConfig.load(run_dir / "config.json")
    backend = HFBackend()
    model, tokenizer = backend.load(config, tiny_model_dir)
    model = backend.apply_adapter(model, config)
    data = load_training_splits(config, tiny_model_dir, tokenizer)
    sink = MemorySink()
    channel = ControlChannel(run_dir)
    channel.put(ControlCommand("stop"))
    phases: list[str] = []
    try:
        trainer = SimpleNamespace(model=model, state=SimpleNamespace(global_step=8))
        metrics = score_after_training(run_dir, config, trainer, tokenizer, data, EventEmitter(run_dir.name, [sink]),
                                       channel, phases.append, Registry())
    finally:
        channel.close()
    assert phases == ["scoring"]
    assert not (run_dir / "hardest.json").exists()
    assert metrics["baseline_eval_loss"] is None and "stopped" in metrics["baseline_error"]
    messages = [event.message for event in sink.of_kind("heartbeat")]
    assert messages[0] == "Scoring each example for the hardest-examples report"
    assert "Scoring stopped" in messages[-1] and "studio hardest" in messages[-1]
