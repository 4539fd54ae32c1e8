"""The queue runner with real workers on the tiny model: order, failures, a killed runner, automatic retrains."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.queue import QueueRunner, RunQueue, Schedules
from studio.engine.runs.active import NOT_ACTIVATED_TAG, active_run
from studio.engine.runs.notices import unseen_notices
from studio.engine.runs.registry import Registry
from tests.engine.training.worker_runs import read_events, write_chat_jsonl


@pytest.fixture(autouse=True)
def _two_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "2")


def _tiny(tiny_model_dir: Path, data: Path, **overrides: object) -> TrainConfig:
    settings: dict[str, object] = {
        "base_model": str(tiny_model_dir), "dataset_path": str(data), "max_steps": 4, "micro_batch_size": 4,
        "gradient_accumulation": 1, "max_length": 96, "learning_rate": 5e-3, "lora_r": 4, "lora_alpha": 8,
        "lora_dropout": 0.0, "checkpoint_every_steps": 2, "eval_fraction": 0.15, "warmup_ratio": 0.0,
        "lr_scheduler": "constant", "score_examples": False, "hardest_top_n": 0,
    }
    settings.update(overrides)
    return TrainConfig.from_dict(settings)


def _always_idle(_registry: Registry) -> tuple[bool, str]:
    return True, ""


def _started_step(run_dir: Path) -> list[int | None]:
    return [e["resumed_from_step"] for e in read_events(run_dir) if e["event"] == "started"]


def test_queued_runs_train_in_order_and_a_failure_does_not_block_the_next(tmp_path: Path, tiny_model_dir: Path):
    data = write_chat_jsonl(tmp_path / "chat.jsonl", rows=40)
    queue = RunQueue()
    first = queue.add(_tiny(tiny_model_dir, data), "first")
    failing = queue.add(_tiny(tiny_model_dir, data, base_model=str(tmp_path / "deleted-model")), "failing")
    last = queue.add(_tiny(tiny_model_dir, data), "last")
    seen: list[tuple[str, str]] = []
    runner = QueueRunner(on_event=lambda entry, event: seen.append((entry.name, event.kind)), is_idle=_always_idle)

    results = runner.run()

    assert [(r.entry.name, r.state) for r in results] == [("first", "done"), ("failing", "failed"), ("last", "done")]
    starts = [name for name, kind in seen if kind == "started"]
    assert starts == ["first", "last"]  # the missing model fails before training starts
    order = [name for name, kind in seen if kind in ("completed", "error")]
    assert order == ["first", "failing", "last"]
    registry = Registry()
    assert [registry.get(e.run_id).status for e in (first, failing, last)] == ["completed", "failed", "completed"]
    assert queue.get(failing.id).outcome.startswith("Failed: ")
    assert "deleted-model" in queue.get(failing.id).outcome
    notices = unseen_notices(registry)
    assert [n.title for n in notices] == ["failing 1.0.0 failed; the queue moved on"]
    assert queue.entries() == []  # nothing left waiting


def test_paused_queue_and_future_start_times_start_nothing(tmp_path: Path, tiny_model_dir: Path):
    data = write_chat_jsonl(tmp_path / "chat.jsonl", rows=20)
    queue = RunQueue()
    later = queue.add(_tiny(tiny_model_dir, data), "later", not_before=datetime.now(timezone.utc) + timedelta(hours=1))
    said: list[str] = []
    runner = QueueRunner(is_idle=_always_idle, say=said.append, poll_s=0.05)
    runner.stop_requested.set()  # one look, then stop
    assert runner.run() == []
    queue.set_paused(True)
    runner = QueueRunner(is_idle=lambda _r: (False, "the GPU is 80% busy"), say=said.append, poll_s=0.05)
    entry, why = runner._next()
    assert entry is None and why == "the queue is paused"
    queue.set_paused(False)
    queue.add(_tiny(tiny_model_dir, data), "idle-only", when_idle=True)
    entry, why = runner._next()
    assert entry is None
    assert "later starts at" in why and "idle-only waits for an idle machine (the GPU is 80% busy)" in why
    assert Registry().get(later.run_id).status == "queued"


def test_a_second_runner_is_refused_while_one_works(tmp_path: Path):
    from filelock import FileLock

    from studio.engine.errors import StudioError
    from studio.engine.queue.runner import runner_busy, runner_lock_path

    assert not runner_busy()
    with FileLock(str(runner_lock_path())):
        assert runner_busy()
        with pytest.raises(StudioError, match="already being worked through"):
            QueueRunner().run()


def _queue_run_process(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "studio.cli.main", "queue", "run"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env={**os.environ, "COLUMNS": "200", **env},
    )


def test_a_watching_runner_stops_when_asked_from_elsewhere(tmp_path: Path):
    from studio.engine.queue import runner_busy, stop_runner

    assert not stop_runner()  # nothing to stop
    watcher = subprocess.Popen([sys.executable, "-m", "studio.cli.main", "queue", "run", "--watch"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 60
    while not runner_busy() and time.monotonic() < deadline and watcher.poll() is None:
        time.sleep(0.2)
    time.sleep(0.5)  # the lock is taken just before the holder file is written
    assert stop_runner()
    output, _ = watcher.communicate(timeout=30)
    assert watcher.returncode == 0 and "Queue finished: 0 done, 0 failed." in output
    assert not runner_busy()


def test_killed_runner_resumes_the_interrupted_run_first(tmp_path: Path, tiny_model_dir: Path):
    data = write_chat_jsonl(tmp_path / "chat.jsonl", rows=40)
    queue = RunQueue()
    first = queue.add(_tiny(tiny_model_dir, data, max_steps=8), "first")
    second = queue.add(_tiny(tiny_model_dir, data), "second")
    runner = _queue_run_process({"STUDIO_TEST_FAULTS": "sleep_per_step=1.0"})
    deadline = time.monotonic() + 240
    events = first.run_dir / "events.jsonl"
    while time.monotonic() < deadline and runner.poll() is None:
        if events.exists() and any(e["event"] == "checkpoint" and e["step"] >= 2 for e in read_events(first.run_dir)):
            break
        time.sleep(0.5)
    assert runner.poll() is None, runner.communicate()[0]
    # The runner and its worker die at once, as in a power cut (the worker has a session of its own).
    worker_pid = Registry().get(first.run_id).pid
    os.killpg(runner.pid, signal.SIGKILL)
    os.killpg(worker_pid, signal.SIGKILL)
    runner.wait(30)
    time.sleep(0.5)
    assert RunQueue().get(first.id).state == "running"  # the queue remembers what was in progress

    restarted = _queue_run_process({})
    output, _ = restarted.communicate(timeout=300)
    assert restarted.returncode == 0, output
    assert output.index("Resuming first") < output.index("Starting second")
    resumed = _started_step(first.run_dir)
    assert resumed[0] is None and resumed[-1] is not None and resumed[-1] >= 2  # resumed, not restarted
    registry = Registry()
    assert registry.get(first.run_id).status == registry.get(second.run_id).status == "completed"
    assert registry.get(first.run_id).metrics["steps"] == 8
    assert registry.get(first.run_id).finished_at <= registry.get(second.run_id).started_at


def _change(data: Path) -> None:
    """Append rows (a real content change) and date the file back, as if saved a while ago."""
    more = write_chat_jsonl(data.with_name("more.jsonl"), rows=8, seed=7).read_text()
    data.write_text(data.read_text() + more)
    old = time.time() - 60
    os.utime(data, (old, old))


@pytest.mark.parametrize(
    ("active_settings", "retrain_settings", "expect_active"),
    [
        # An untrained version is active; a real retrain beats it and takes over.
        ({"max_steps": 1, "learning_rate": 1e-6}, {"max_steps": 12}, True),
        # A well-trained version is active; a retrain that barely learns is kept but not made active.
        ({"max_steps": 12}, {"max_steps": 1, "learning_rate": 1e-6}, False),
    ],
    ids=["better-takes-over", "worse-is-kept-aside"],
)
def test_dataset_change_retrains_and_activates_only_when_not_worse(
    tmp_path: Path, tiny_model_dir: Path, active_settings: dict, retrain_settings: dict, expect_active: bool
):
    data = write_chat_jsonl(tmp_path / "chat.jsonl", rows=48)
    registry = Registry()
    queue = RunQueue(registry)
    queue.add(_tiny(tiny_model_dir, data, **active_settings), "pip")
    assert [r.state for r in QueueRunner(registry, is_idle=_always_idle).run()] == ["done"]
    original = active_run(registry, "pip")
    assert original is not None and original.version == "1.0.0"  # the first finished version

    Schedules(registry).add("pip", _tiny(tiny_model_dir, data, **retrain_settings), watch=True)
    _change(data)
    results = QueueRunner(registry, is_idle=_always_idle).run()

    assert len(results) == 1 and results[0].state == "done"
    retrain = registry.get(results[0].entry.run_id)
    assert retrain.name == "pip" and retrain.version != "1.0.0"
    assert retrain.config["compare_adapter"].endswith(str(Path(original.id) / "final" / "adapter"))
    new, old = retrain.metrics["final_eval_loss"], retrain.metrics["baseline_eval_loss"]
    assert (new <= old) is expect_active  # the settings make the gap large; the rule follows the numbers
    now_active = active_run(registry, "pip")
    notices = unseen_notices(registry)
    if expect_active:
        assert now_active.id == retrain.id
        assert NOT_ACTIVATED_TAG not in registry.tags(retrain.id)
        assert "is now the active version" in notices[-1].title
    else:
        assert now_active.id == original.id
        assert NOT_ACTIVATED_TAG in registry.tags(retrain.id)
        assert "kept but not made active" in notices[-1].title
        assert any("Not made active" in note for note in registry.notes(retrain.id))
    assert json.loads(json.dumps(retrain.metrics))  # stored metrics stay plain JSON
