"""The real worker entry point on the tiny model: training, pause, release and resume, stop, kill, damage, OOM.

Each test drives `python -m studio.engine.training.worker RUN_DIR` through the Supervisor, as the CLI and
GUI do. The uninterrupted run is shared (module scope) as the reference loss curve.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.events import Event
from studio.engine.runs.folders import create_run_dir
from studio.engine.runs.registry import Registry
from studio.engine.training import checkpoints
from studio.engine.training.supervisor import Supervisor, WorkerOutcome
from tests.engine.training.worker_runs import losses, read_events, write_chat_jsonl

BASE = {
    "max_steps": 6,
    "micro_batch_size": 4,
    "gradient_accumulation": 1,
    "max_length": 96,
    "learning_rate": 5e-3,
    "lora_r": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.0,
    "checkpoint_every_steps": 2,
    "eval_fraction": 0.1,
    "eval_every_steps": 3,
    "warmup_ratio": 0.0,
    "lr_scheduler": "linear",
}


def new_run(root: Path, model: Path, data: Path, name: str, **overrides: object) -> Path:
    config = TrainConfig.from_dict({**BASE, "base_model": str(model), "dataset_path": str(data), **overrides})
    return create_run_dir(config, name, root=root)


def supervise(
    run_dir: Path,
    react: Callable[[Supervisor, Event], None] | None = None,
    env: dict[str, str] | None = None,
    **kwargs: object,
) -> tuple[WorkerOutcome, list[Event]]:
    seen: list[Event] = []
    holder: dict[str, Supervisor] = {}

    def on_event(event: Event) -> None:
        seen.append(event)
        if react is not None:
            react(holder["sup"], event)

    sup = Supervisor(run_dir, on_event=on_event, env={"OMP_NUM_THREADS": "2", **(env or {})}, **kwargs)
    holder["sup"] = sup
    sup.start()
    return sup.wait(timeout=300), seen


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shared-runs")
    return {"root": root, "model": tiny_model_dir, "data": write_chat_jsonl(root / "chat.jsonl")}


@pytest.fixture(scope="module")
def reference(shared: dict[str, Path]) -> dict[str, object]:
    """An uninterrupted run, paused in memory for a moment and frozen (SIGSTOP) long enough to look silent."""
    run_dir = new_run(shared["root"], shared["model"], shared["data"], "reference")
    silences: list[float] = []
    done: set[str] = set()

    def react(sup: Supervisor, event: Event) -> None:
        if event.kind == "progress" and event.step == 2 and "pause" not in done:
            done.add("pause")
            sup.pause()
        elif event.kind == "paused" and "resume" not in done:
            done.add("resume")
            os.kill(sup.pid, signal.SIGSTOP)  # a frozen worker says nothing: the watchdog must notice
            threading.Timer(2.5, lambda: (os.kill(sup.pid, signal.SIGCONT), sup.resume())).start()

    outcome, events = supervise(run_dir, react, on_silence=silences.append, silence_limit_s=1.5)
    return {
        "run_dir": run_dir,
        "outcome": outcome,
        "events": events,
        "silences": silences,
        "records": read_events(run_dir),
    }


def test_uninterrupted_run_learns_and_leaves_a_complete_record(reference, studio_home):
    outcome, records, run_dir = reference["outcome"], reference["records"], reference["run_dir"]
    assert outcome.exit_code == 0 and outcome.status == "completed"
    kinds = [r["event"] for r in records]
    assert kinds.count("started") == 1 and kinds[-1] == "completed"
    assert [r["seq"] for r in records] == sorted(r["seq"] for r in records)
    curve = losses(records)
    assert list(curve) == [1, 2, 3, 4, 5, 6]
    assert curve[6] < curve[1]
    assert all(r["grad_norm"] > 0 and r["tokens_per_s"] > 0 for r in records if r["event"] == "progress")
    assert [r["step"] for r in records if r["event"] == "eval"] == [3, 6]
    # what the supervisor saw is what the record holds
    assert [e.seq for e in reference["events"] if e.kind != "heartbeat"] == [
        r["seq"] for r in records if r["event"] != "heartbeat"
    ]
    # checkpoints: sealed, verified, retention (best 1 by eval loss + latest 2)
    kept = [info.step for info in checkpoints.list_checkpoints(run_dir)]
    assert kept[-2:] == [4, 6] and set(kept) <= {2, 4, 6}
    for info in checkpoints.list_checkpoints(run_dir):
        assert checkpoints.verify(info.path) is None
        assert (info.path / "optimizer.pt").exists() and (info.path / "rng_state.pth").exists()
    adapter = run_dir / "final" / "adapter"
    assert (adapter / "adapter_model.safetensors").exists() and (adapter / "adapter_config.json").exists()
    completed = records[-1]
    assert completed["metrics"]["steps"] == 6 and completed["metrics"]["peak_rss"] > 0


def test_pause_in_memory_then_resume(reference):
    records = reference["records"]
    kinds = [r["event"] for r in records]
    paused = kinds.index("paused")
    assert records[paused]["step"] in (2, 3) and records[paused]["released"] is False
    assert kinds[paused + 1 :].count("resumed") == 1
    assert kinds[paused + 1 :].index("resumed") < kinds[paused + 1 :].index(
        "progress"
    )  # no step while paused


def test_silent_worker_is_noticed(reference):
    assert reference["silences"], "the watchdog did not report the frozen worker"


def test_release_then_resume_in_new_process_continues_the_curve(shared, reference):
    run_dir = new_run(shared["root"], shared["model"], shared["data"], "released")

    def release_at_3(sup: Supervisor, event: Event) -> None:
        if event.kind == "progress" and event.step == 3:
            sup.pause_release()

    first, _ = supervise(run_dir, release_at_3)
    assert first.exit_code == 0 and first.status == "paused"
    released = read_events(run_dir)[-1]
    assert released["event"] == "paused" and released["released"] is True
    release_step = released["step"]  # 3, or 4 when the command landed while step 4 was under way
    assert release_step in (3, 4) and checkpoints.latest_good(run_dir).step == release_step
    second, _ = supervise(run_dir)
    assert second.exit_code == 0 and second.status == "completed"
    records = read_events(run_dir)
    started = [r for r in records if r["event"] == "started"]
    assert [s["resumed_from_step"] for s in started] == [None, release_step]
    resumed_curve = losses(records)
    assert sorted(resumed_curve) == [1, 2, 3, 4, 5, 6]
    expected = losses(reference["records"])
    for step, loss in resumed_curve.items():
        assert loss == pytest.approx(expected[step], abs=5e-3), f"step {step}"


def test_sigterm_kill_and_damaged_checkpoint_then_resume_completes(shared, studio_home):
    run_dir = new_run(shared["root"], shared["model"], shared["data"], "battered", eval_every_steps=None, max_steps=8)

    def term_at_3(sup: Supervisor, event: Event) -> None:
        if event.kind == "progress" and event.step == 3:
            os.kill(sup.pid, signal.SIGTERM)

    stopped, _ = supervise(run_dir, term_at_3)
    assert stopped.exit_code == 130 and stopped.status == "stopped"
    records = read_events(run_dir)
    assert records[-1]["event"] == "stopped" and records[-1]["reason"] == "SIGTERM"
    stop_step = records[-1]["step"]  # the step under way when the signal landed is finished first
    assert stop_step in (3, 4) and checkpoints.latest_good(run_dir).step == stop_step

    saved_after_stop: list[int] = []

    def kill_after_next_checkpoint(sup: Supervisor, event: Event) -> None:
        # Killing on a fixed step raced the checkpoint write of that same step; wait until one has landed.
        if event.kind == "checkpoint" and event.step > stop_step:
            saved_after_stop.append(event.step)
        elif event.kind == "progress" and saved_after_stop and event.step > saved_after_stop[0]:
            os.kill(sup.pid, signal.SIGKILL)

    killed, _ = supervise(run_dir, kill_after_next_checkpoint)
    assert killed.exit_code == -signal.SIGKILL and killed.status == "interrupted"
    registry = Registry()
    registry.reconcile()
    assert registry.get(run_dir.name).status == "interrupted"

    *_, previous, latest = checkpoints.list_checkpoints(run_dir)
    assert latest.step == saved_after_stop[0] and checkpoints.verify(latest.path) is None
    weights = latest.path / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64] + b"\0" * 64)  # a damaged file

    finished, _ = supervise(run_dir)
    assert finished.exit_code == 0
    records = read_events(run_dir)
    damaged = [r for r in records if r["event"] == "anomaly" and r["anomaly"] == "damaged_checkpoint"]
    assert damaged and damaged[-1]["step"] == latest.step
    assert [r["resumed_from_step"] for r in records if r["event"] == "started"] == [None, stop_step, previous.step]
    assert records[-1]["event"] == "completed" and records[-1]["step"] == 8
    assert registry.get(run_dir.name).status == "completed"


def test_out_of_memory_exits_3_with_advice(shared):
    # With anomaly handling off there is no automatic retry (test_recovery.py covers the retries).
    run_dir = new_run(shared["root"], shared["model"], shared["data"], "oom", anomaly_mode="off")
    outcome, _ = supervise(run_dir, env={"STUDIO_TEST_FAULTS": "oom_at_step=2"})
    assert outcome.exit_code == 3 and outcome.status == "failed"
    error = read_events(run_dir)[-1]
    assert error["event"] == "error" and error["code"] == "out_of_memory"
    assert 2 <= len(error["actions"]) <= 3 and "micro-batch" in error["actions"][0]
    json.dumps(error)  # strict JSON all the way
