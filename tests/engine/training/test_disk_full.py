"""A full disk during training: the worker ends with a `disk_full` error (exit 1) on stdout, the registry row is
not left "running", and the last good checkpoint stays whole. Faults are injected with STUDIO_TEST_FAULTS;
one test fills a real (tiny) tmpfs when this machine lets it mount one.
"""

from __future__ import annotations

import contextlib
import errno
import json
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from shutil import disk_usage

import pytest

from studio.engine.config import TrainConfig
from studio.engine.events import Heartbeat, Progress
from studio.engine.library.disk import format_bytes, tree_size
from studio.engine.models.facts import read_model_facts
from studio.engine.planner.disk import (
    CHECKPOINT_SMALL_FILES,
    checkpoint_bytes,
    checkpoints_at_once,
    disk_needed_bytes,
)
from studio.engine.planner.memory import adapter_params
from studio.engine.runs.folders import load_run_config
from studio.engine.runs.registry import Registry
from studio.engine.training import checkpoints
from studio.engine.training.disk import is_disk_full, tokenizer_bytes
from studio.engine.training.faults import ENV_VAR
from studio.engine.training.heartbeats import Heartbeats
from studio.engine.training.sinks import EventEmitter, FileSink, MemorySink
from tests.engine.training.worker_runs import read_events, run_worker_process, worker_env


def stdout_events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.strip()]


def assert_disk_full_error(event: dict, run_dir: Path) -> None:
    assert event["event"] == "error"
    assert event["code"] == "disk_full"
    assert event["exit_code"] == 1
    assert str(run_dir) in event["hint"]
    assert any("Free " in action for action in event["actions"])


def assert_not_running(run_id: str) -> None:
    registry = Registry()
    registry.reconcile()
    record = registry.get(run_id)
    assert record is not None
    assert record.status in {"failed", "interrupted"}


# ---- sinks and heartbeat ----------------------------------------------------------------------------------


def test_a_failed_events_file_write_still_reaches_the_other_sinks_then_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, "events_disk_full_at_step=2")
    memory = MemorySink()
    file_sink = FileSink(tmp_path / "events.jsonl")
    emitter = EventEmitter("run", [file_sink, memory])
    emitter.emit(Heartbeat, phase="training")
    with pytest.raises(OSError) as failed:
        emitter.emit(Progress, step=2, total_steps=4, loss=1.0)
    assert failed.value.errno == errno.ENOSPC
    with pytest.raises(OSError):  # the file stays off: a later event is not written after a gap
        emitter.emit(Heartbeat, phase="training")
    emitter.close()
    assert [event.kind for event in memory.events] == ["heartbeat", "progress", "heartbeat"]
    assert [json.loads(line)["event"] for line in (tmp_path / "events.jsonl").read_text().splitlines()] == [
        "heartbeat"
    ]


def test_a_record_cut_mid_line_is_continued_on_a_new_line(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"event": "heartbeat", "seq": 1}\n{"event": "prog', encoding="utf-8")
    sink = FileSink(path)
    EventEmitter("run", [sink], start_seq=1).emit(Heartbeat, phase="training")
    sink.close()
    assert json.loads(path.read_text().splitlines()[-1])["seq"] == 2


def test_the_heartbeat_outlives_a_failed_write() -> None:
    class FailingOnce(MemorySink):
        def __init__(self) -> None:
            super().__init__()
            self.failed = False
            self.second = threading.Event()

        def write(self, event: object) -> None:
            if not self.failed:
                self.failed = True
                raise OSError(errno.ENOSPC, "No space left on device")
            super().write(event)  # type: ignore[arg-type]
            self.second.set()

    sink = FailingOnce()
    beats = Heartbeats(EventEmitter("run", [sink]), interval=0.01)
    try:
        assert sink.second.wait(timeout=5), "the heartbeat thread died with the failed write"
    finally:
        beats.close()


def test_a_full_disk_is_recognised_in_the_words_of_each_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio.engine.training import disk

    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("saving the checkpoint failed") from inner
    except RuntimeError as wrapped:
        assert is_disk_full(wrapped)
    assert is_disk_full(Exception('Error while serializing: IoError(Os { code: 28, kind: StorageFull, ... })'))
    assert is_disk_full(Exception("database or disk is full"))
    torch_words = RuntimeError("[enforce fail at inline_container.cc:603] . PytorchStreamWriter: file write failed")
    monkeypatch.setattr(disk, "free_bytes", lambda folder: 0)
    assert is_disk_full(torch_words, tmp_path)
    monkeypatch.setattr(disk, "free_bytes", lambda folder: 10**12)
    assert not is_disk_full(torch_words, tmp_path)  # with room left, that failed write is something else
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"), tmp_path)
    assert not is_disk_full(ValueError("bad value"), tmp_path)


# ---- checkpoints ------------------------------------------------------------------------------------------


def write_checkpoint_files(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    (folder / "optimizer.pt").write_bytes(b"state")
    return folder


def test_a_checkpoint_that_cannot_be_sealed_is_removed_and_the_previous_one_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_dir = tmp_path / "run"
    good = checkpoints.seal(write_checkpoint_files(run_dir / ".staging" / "checkpoint-2"), run_dir, 2)
    monkeypatch.setenv(ENV_VAR, "disk_full_at_step=4")
    staged = write_checkpoint_files(run_dir / ".staging" / "checkpoint-4")
    with pytest.raises(OSError):
        checkpoints.seal(staged, run_dir, 4)
    assert not staged.exists()
    assert [info.step for info in checkpoints.list_checkpoints(run_dir)] == [2]
    assert checkpoints.latest_good(run_dir) == checkpoints.CheckpointInfo(2, good.path)


# ---- the real worker on the tiny model ----------------------------------------------------------------------


@pytest.mark.slow
def test_disk_full_while_checkpointing_ends_the_run_with_disk_full_and_keeps_the_last_good_checkpoint(
    make_run,
) -> None:
    run_dir = make_run("ckpt-full", max_steps=4, checkpoint_every_steps=2)
    done = run_worker_process(run_dir, **{ENV_VAR: "disk_full_at_step=4"})
    assert done.returncode == 1, done.stderr[-3000:]
    last = stdout_events(done.stdout)[-1]
    assert_disk_full_error(last, run_dir)
    assert read_events(run_dir)[-1] == last  # the events file still had room
    assert [info.step for info in checkpoints.list_checkpoints(run_dir)] == [2]
    good = checkpoints.latest_good(run_dir)
    assert good is not None and good.step == 2
    config = load_run_config(run_dir)
    estimated = checkpoint_bytes(config, read_model_facts(config.base_model), tokenizer_bytes(Path(config.base_model)))
    assert tree_size(good.path) <= estimated < 2 * tree_size(good.path)  # an upper bound, not a wild one
    assert not list((run_dir / ".staging").glob("checkpoint-*"))  # the half-written one is gone
    assert not (run_dir / "final" / "adapter").exists()
    assert_not_running(run_dir.name)


@pytest.mark.slow
def test_disk_full_on_the_events_file_still_sends_the_error_on_stdout(make_run) -> None:
    run_dir = make_run("events-full", max_steps=3, checkpoint_every_steps=10)
    done = run_worker_process(run_dir, **{ENV_VAR: "events_disk_full_at_step=2"})
    assert done.returncode == 1, done.stderr[-3000:]
    sent = stdout_events(done.stdout)
    assert_disk_full_error(sent[-1], run_dir)
    assert [event["seq"] for event in sent] == list(range(1, len(sent) + 1))
    recorded = read_events(run_dir)
    assert recorded == sent[: len(recorded)]
    assert all(event.get("step", 0) < 2 for event in recorded)
    assert_not_running(run_dir.name)


# ---- the estimate and the check before training -----------------------------------------------------------


def tiny_config(tiny_model_dir: Path, **overrides: object) -> TrainConfig:
    settings: dict[str, object] = {"base_model": str(tiny_model_dir), "lora_r": 8, "checkpoint_every_steps": 2}
    return TrainConfig.from_dict({**settings, **overrides})


def test_the_estimate_counts_every_checkpoint_kept_at_once_and_the_final_adapter(tiny_model_dir: Path) -> None:
    facts = read_model_facts(tiny_model_dir)
    config = tiny_config(tiny_model_dir, keep_last_checkpoints=2, keep_best_checkpoints=1)
    assert checkpoints_at_once(config) == 4  # the three kept, and the next one before retention runs
    assert checkpoints_at_once(config.updated(max_steps=2)) == 2  # a short run saves fewer
    one = checkpoint_bytes(config, facts, tokenizer_bytes=1000)
    adapter = adapter_params(facts, config) * 4
    assert one == adapter * 3 + 1000 + CHECKPOINT_SMALL_FILES  # adapter + AdamW's two moments
    needed = disk_needed_bytes(config, facts, tokenizer_bytes=1000)
    assert needed >= 4 * one + adapter + 1000
    assert disk_needed_bytes(config.updated(lora_r=64), facts) > disk_needed_bytes(config, facts)
    assert disk_needed_bytes(config.updated(keep_last_checkpoints=5), facts) > disk_needed_bytes(config, facts)
    assert disk_needed_bytes(config, facts, written_bytes=10**6) == disk_needed_bytes(config, facts) - 10**6
    assert disk_needed_bytes(config, facts, written_bytes=10**12) == 0


def test_training_is_refused_before_the_model_loads_when_the_disk_is_too_small(
    make_run, monkeypatch: pytest.MonkeyPatch
) -> None:
    from studio.engine.training import disk, entry, recipe

    run_dir = make_run("no-room", max_steps=4, checkpoint_every_steps=2)
    config = load_run_config(run_dir)
    needed = disk.run_disk_needed(config, Path(config.base_model), run_dir)
    assert needed is not None and needed > 0
    free = needed // 2
    monkeypatch.setattr(disk, "free_bytes", lambda folder: free)

    class NeverLoads:
        name = "never"

        def load(self, *args: object) -> None:
            raise AssertionError("the model was loaded although the disk is too small")

    monkeypatch.setattr(recipe, "select_backend", lambda config: (NeverLoads(), "test"))
    sink = MemorySink()
    assert entry.run_worker(run_dir, [sink]) == 1
    error = sink.events[-1]
    assert error.kind == "error" and error.code == "disk_full" and error.exit_code == 1
    assert f"needs about {format_bytes(needed)}" in error.hint
    assert f"{format_bytes(free)} is free in {run_dir}" in error.hint
    assert any(f"Free about {format_bytes(needed)}" in action for action in error.actions)
    record = Registry().get(run_dir.name)
    assert record is not None and record.status == "failed"
    assert not checkpoints.list_checkpoints(run_dir)


# ---- a real disk that fills up ------------------------------------------------------------------------------


@pytest.fixture
def tiny_disk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A 64 MB tmpfs at tmp_path/runs (where make_run puts its runs) that also holds STUDIO_HOME; skipped where
    this machine cannot mount one (not root, or no mount namespace)."""
    disk = tmp_path / "runs"
    disk.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no `mount` command here, so no tiny tmpfs can be made")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)], capture_output=True, text=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    monkeypatch.setenv("STUDIO_HOME", str(disk / "home"))
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> None:
    """Write into `disk` until it has no room left."""
    with (disk / "filler").open("wb") as handle:
        block = b"\0" * (1 << 20)
        with contextlib.suppress(OSError):
            while True:
                handle.write(block)
                handle.flush()
        with contextlib.suppress(OSError):  # the last partial block may leave a few bytes; take them too
            handle.write(b"\0" * disk_usage(disk).free)
            handle.flush()


@pytest.mark.slow
def test_a_studio_home_on_a_tmpfs_that_fills_mid_run_ends_with_disk_full(tiny_disk: Path, make_run) -> None:
    run_dir = make_run("fills-up", max_steps=6, checkpoint_every_steps=2)
    assert run_dir.parent == tiny_disk
    worker = subprocess.Popen(
        [sys.executable, "-m", "studio.engine.training.worker", str(run_dir)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=worker_env(**{ENV_VAR: "sleep_per_step=0.5"}),
    )
    sent: list[dict] = []
    try:
        assert worker.stdout is not None
        for line in worker.stdout:
            sent.append(json.loads(line))
            if sent[-1]["event"] == "checkpoint" and sent[-1]["step"] == 2:
                worker.send_signal(signal.SIGSTOP)  # hold it still while the disk fills
                fill(tiny_disk)
                worker.send_signal(signal.SIGCONT)
        code = worker.wait(timeout=240)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert code == 1, worker.stderr.read()[-3000:] if worker.stderr else ""
    assert_disk_full_error(sent[-1], run_dir)
    good = checkpoints.latest_good(run_dir)
    assert good is not None and good.step == 2
    assert [info.step for info in checkpoints.list_checkpoints(run_dir)] == [2]
    (tiny_disk / "filler").unlink()  # the user frees space; the registry (on that disk too) opens again
    assert_not_running(run_dir.name)
