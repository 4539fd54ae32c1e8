"""Anomaly detection and recovery in real training runs: the worker entry on the tiny model, faults injected
through STUDIO_TEST_FAULTS (the exploding learning rate on the built-in model, whose loss can blow up).

Every run must end with its record intact: each line of events.jsonl parses, the sequence numbers rise, and
every checkpoint left on disk verifies against its manifest.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.engine.anomalies import ACTION_LABELS
from studio.engine.config import TrainConfig
from studio.engine.control import ControlCommand
from studio.engine.events import parse_event
from studio.engine.runs.folders import create_run_dir
from studio.engine.runs.registry import Registry
from studio.engine.training import checkpoints
from studio.engine.training.control_channel import send_to_run_dir
from tests.engine.training.worker_runs import read_events, run_worker_process, worker_env

SMALL = {"micro_batch_size": 2, "max_length": 64, "checkpoint_every_steps": 2, "eval_fraction": 0.0}
HEALTH = {"nan", "loss_spike", "divergence", "grad_explosion", "overfitting", "plateau", "out_of_memory"}
"""Anomalies about the training itself (memory pressure and slow-downs are about this busy machine)."""
TIMEOUT_S = 420


def assert_intact(run_dir: Path) -> list[dict]:
    """The run's record survived: strict JSON lines that parse as events, in order; sealed checkpoints."""
    lines = [line for line in (run_dir / "events.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    for line in lines:
        json.loads(line, parse_constant=strict_json_only)
        parse_event(line)
    records = [json.loads(line) for line in lines]
    seqs = [record["seq"] for record in records]
    assert seqs == sorted(set(seqs))
    for info in checkpoints.list_checkpoints(run_dir):
        assert checkpoints.verify(info.path) is None, info.path
    return records


def strict_json_only(name: str) -> None:
    pytest.fail(f"events.jsonl holds {name}, which strict JSON does not allow")


def of_kind(records: list[dict], kind: str) -> list[dict]:
    return [record for record in records if record["event"] == kind]


def test_nan_loss_rolls_back_to_last_good_checkpoint_with_half_the_learning_rate(make_run):
    run_dir = make_run("nan", **SMALL, max_steps=6)
    done = run_worker_process(run_dir, timeout=TIMEOUT_S, STUDIO_TEST_FAULTS="nan_at_step=5")
    assert done.returncode == 0, done.stderr[-2000:]
    records = assert_intact(run_dir)
    [anomaly] = [a for a in of_kind(records, "anomaly") if a["anomaly"] in HEALTH]
    assert anomaly["anomaly"] == "nan" and anomaly["step"] == 5 and anomaly["severity"] == "critical"
    assert anomaly["evidence"]["loss"] == "NaN" and anomaly["actions"] == ["rollback_and_halve_lr"]
    assert "invalid number" in anomaly["message"]
    [recovery] = of_kind(records, "recovery")
    assert recovery["action"] == "rollback_and_halve_lr" and recovery["after"]["restored_step"] == 4
    assert recovery["after"]["lr"] == pytest.approx(recovery["before"]["lr"] / 2)
    assert not [c for c in of_kind(records, "checkpoint") if c["step"] == 5 and c["seq"] < recovery["seq"]]
    replay = [p for p in of_kind(records, "progress") if p["seq"] > recovery["seq"]]
    assert [p["step"] for p in replay] == [5, 6]
    assert all(math.isfinite(p["loss"]) and p["lr"] == pytest.approx(2.5e-3) for p in replay)
    completed = records[-1]
    assert completed["event"] == "completed" and completed["step"] == 6
    assert "NaN" in completed["summary"] and "recovered" in completed["summary"]
    assert completed["metrics"]["trustworthy"] and completed["metrics"]["recoveries"] == 1
    final = Registry().get(run_dir.name)
    assert final.status == "completed" and final.metrics["summary"] == completed["metrics"]["summary"]


def test_out_of_memory_halves_micro_batch_keeps_effective_batch_and_retries(make_run):
    run_dir = make_run("oom-retry", **{**SMALL, "micro_batch_size": 4, "checkpoint_every_steps": 1}, max_steps=3)
    faults = "oom_at_step=2,oom_above_micro_batch=2"  # the first attempt at 4 fails, 2 at once fits
    done = run_worker_process(run_dir, timeout=TIMEOUT_S, STUDIO_TEST_FAULTS=faults)
    assert done.returncode == 0, done.stderr[-2000:]
    records = assert_intact(run_dir)
    [anomaly] = of_kind(records, "anomaly")
    assert anomaly["anomaly"] == "out_of_memory" and anomaly["evidence"]["micro_batch"] == 4
    [recovery] = of_kind(records, "recovery")
    assert recovery["action"] == "reduce_batch_for_oom"
    assert recovery["before"] == {"micro_batch": 4, "accumulation": 1}
    assert recovery["after"]["micro_batch"] == 2 and recovery["after"]["accumulation"] == 2
    assert recovery["after"]["effective_batch"] == 4
    # Resumed from step 1's checkpoint; getting past step 2 at all proves the micro-batch is at most 2 (the
    # fault fires above that), and the config in the registry is still the user's.
    assert [p["step"] for p in of_kind(records, "progress")] == [1, 2, 3]
    assert [c["step"] for c in of_kind(records, "checkpoint")] == [1, 2, 3]
    assert records[-1]["event"] == "completed" and records[-1]["step"] == 3


def test_repeated_out_of_memory_exits_3_with_advice_after_three_retries(make_run):
    run_dir = make_run("oom-exhausted", **{**SMALL, "micro_batch_size": 8}, max_steps=2)
    done = run_worker_process(run_dir, timeout=TIMEOUT_S, STUDIO_TEST_FAULTS="oom_at_step=1")
    assert done.returncode == 3, done.stderr[-2000:]
    records = assert_intact(run_dir)
    retries = [r for r in of_kind(records, "recovery") if r["action"] == "reduce_batch_for_oom"]
    assert [(r["after"]["micro_batch"], r["after"]["accumulation"]) for r in retries] == [(4, 2), (2, 4), (1, 8)]
    assert of_kind(records, "recovery")[-1]["action"] == "stop_training"
    error = records[-1]
    assert error["event"] == "error" and error["code"] == "out_of_memory" and error["exit_code"] == 3
    assert "3 time(s)" in error["hint"] and 2 <= len(error["actions"]) <= 3
    assert Registry().get(run_dir.name).status == "failed"


def test_memory_above_90_percent_warns_and_checkpoints_at_once(make_run):
    run_dir = make_run("memory", **{**SMALL, "checkpoint_every_steps": 100}, max_steps=2)
    done = run_worker_process(run_dir, timeout=TIMEOUT_S, STUDIO_TEST_FAULTS="ram_frac=0.95")
    assert done.returncode == 0, done.stderr[-2000:]
    records = assert_intact(run_dir)
    [warning] = [a for a in of_kind(records, "anomaly") if a["anomaly"] == "memory_pressure"]
    assert warning["severity"] == "warning" and warning["step"] == 1 and warning["evidence"]["ram_frac"] == 0.95
    assert warning["actions"] == [] and warning["advice"]  # nothing to fix in the run, advice only
    checkpoint = of_kind(records, "checkpoint")[0]  # long before the schedule's first (the end of training)
    assert checkpoint["reason"] == "anomaly" and checkpoint["step"] == 1
    assert checkpoint["seq"] > warning["seq"]
    assert records[-1]["event"] == "completed"


def test_ask_mode_pauses_until_the_user_answers(make_run):
    run_dir = make_run("ask", **SMALL, max_steps=4, anomaly_mode="ask")
    worker = subprocess.Popen(
        [sys.executable, "-m", "studio.engine.training.worker", str(run_dir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=worker_env(STUDIO_TEST_FAULTS="nan_at_step=3"),
    )
    try:
        deadline = time.monotonic() + TIMEOUT_S
        paused: list[dict] = []
        while not paused and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.5)
            if (run_dir / "events.jsonl").exists():
                paused = [p for p in of_kind(read_events(run_dir), "paused") if p["reason"] == "anomaly"]
        assert paused, "the worker never paused for the anomaly"
        time.sleep(1.0)  # paused means waiting: no training step goes by
        events = read_events(run_dir)
        [question] = of_kind(events, "anomaly")
        assert question["anomaly"] == "nan" and question["step"] == 3 and paused[0]["step"] == 3
        assert question["actions"] and set(question["actions"]) <= set(ACTION_LABELS)
        assert question["offer_labels"]["rollback"] == ACTION_LABELS["rollback"]
        assert max(p["step"] for p in of_kind(events, "progress")) == 3 and not of_kind(events, "recovery")
        assert Registry().get(run_dir.name).status == "paused"
        send_to_run_dir(run_dir, ControlCommand("anomaly_action", {"action": "sideways"}))  # not a choice
        send_to_run_dir(run_dir, ControlCommand("anomaly_action", {"action": "rollback", "anomaly": "nan",
                                                                    "step": 3}))
        assert worker.wait(timeout=TIMEOUT_S) == 0, worker.stderr.read()[-2000:] if worker.stderr else ""
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    records = assert_intact(run_dir)
    resumed = of_kind(records, "resumed")
    [recovery] = of_kind(records, "recovery")
    assert resumed and resumed[0]["seq"] < recovery["seq"]
    assert recovery["action"] == "rollback_and_halve_lr" and recovery["after"]["restored_step"] == 2
    assert records[-1]["event"] == "completed" and records[-1]["step"] == 4


def test_normal_run_raises_no_alert_about_training_health(make_run):
    run_dir = make_run("healthy", **{**SMALL, "eval_fraction": 0.1, "eval_every_steps": 3}, max_steps=6)
    done = run_worker_process(run_dir, timeout=TIMEOUT_S)
    assert done.returncode == 0, done.stderr[-2000:]
    records = assert_intact(run_dir)
    assert not [a for a in of_kind(records, "anomaly") if a["anomaly"] in HEALTH]
    assert not of_kind(records, "recovery")
    completed = records[-1]
    assert completed["event"] == "completed" and completed["metrics"]["trustworthy"]
    assert completed["summary"].startswith("Training completed normally") or "low on memory" in completed["summary"]


@pytest.mark.slow
def test_exploding_learning_rate_is_detected_and_rolled_back(tmp_path: Path, builtin_model_dir: Path, chat_jsonl):
    """The built-in model: a learned loss (about 3) that a learning rate x1000 blows up within a step."""
    config = TrainConfig.from_dict({
        "base_model": str(builtin_model_dir), "dataset_path": str(chat_jsonl), **SMALL, "micro_batch_size": 1,
        "max_steps": 4, "learning_rate": 2e-3, "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
        "warmup_ratio": 0.0, "lr_scheduler": "constant",
    })
    run_dir = create_run_dir(config, "explode", root=tmp_path / "runs")
    done = run_worker_process(run_dir, timeout=600, STUDIO_TEST_FAULTS="explode_lr_at_step=3")
    assert done.returncode == 0, done.stderr[-2000:]
    records = assert_intact(run_dir)
    alarms = [a for a in of_kind(records, "anomaly") if a["anomaly"] in HEALTH]
    assert alarms and alarms[0]["anomaly"] in {"loss_spike", "nan"} and alarms[0]["step"] in {3, 4}
    [recovery] = of_kind(records, "recovery")
    assert recovery["action"] == "rollback_and_halve_lr" and recovery["after"]["restored_step"] == 2
    assert recovery["after"]["lr"] == pytest.approx(1e-3)
    replay = [p for p in of_kind(records, "progress") if p["seq"] > recovery["seq"]]
    assert replay and all(p["lr"] == pytest.approx(1e-3) and p["loss"] < 10 for p in replay)
    assert records[-1]["event"] == "completed" and records[-1]["step"] == 4
