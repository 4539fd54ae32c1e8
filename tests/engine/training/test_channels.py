"""Sinks, control channel (stdin and control folder), faults and the worker command line."""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

from studio.engine.control import ControlCommand
from studio.engine.events import Progress, parse_event
from studio.engine.training.control_channel import ControlChannel, send_to_run_dir
from studio.engine.training.faults import parse_faults
from studio.engine.training.sinks import EventEmitter, FileSink, MemorySink, StreamSink, last_seq
from studio.engine.training.supervisor import worker_command


def test_emitter_stamps_and_fans_out(tmp_path: Path):
    stream, memory = io.StringIO(), MemorySink()
    emitter = EventEmitter(
        "run-1", [StreamSink(stream), FileSink(tmp_path / "events.jsonl"), memory], start_seq=7
    )
    emitter.emit(Progress, step=1, total_steps=10, loss=float("nan"))
    emitter.emit(Progress, step=2, total_steps=10, loss=2.0)
    emitter.close()
    lines = stream.getvalue().splitlines()
    assert lines == (tmp_path / "events.jsonl").read_text().splitlines()
    parsed = [parse_event(line) for line in lines]
    assert [e.seq for e in parsed] == [8, 9] and all(e.run_id == "run-1" and e.ts for e in parsed)
    assert len(memory.of_kind("progress")) == 2
    assert last_seq(tmp_path / "events.jsonl") == 9


def _wait_for(channel: ControlChannel, timeout: float = 5.0) -> ControlCommand | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        command = channel.get(timeout=0.1)
        if command is not None:
            return command
    return None


def test_control_from_stdin_and_from_the_run_folder(tmp_path: Path):
    stale = send_to_run_dir(tmp_path, ControlCommand("stop"))
    stdin = io.StringIO('not json\n{"command": "pause"}\n{"command": "explode"}\n')
    channel = ControlChannel(tmp_path, stdin)
    assert not stale.exists()  # left over from an earlier worker: discarded
    assert _wait_for(channel) == ControlCommand("pause")
    send_to_run_dir(tmp_path, ControlCommand("pause_release", {"reason": "user"}))
    assert _wait_for(channel) == ControlCommand("pause_release", {"reason": "user"})
    assert list((tmp_path / "control").glob("*.json")) == []
    assert channel.get() is None
    channel.close()


def test_faults_parse():
    faults = parse_faults("oom_at_step=3, sleep_per_step=0.5,flag")
    assert faults.get_int("oom_at_step") == 3 and faults.get_float("sleep_per_step") == 0.5
    assert faults.values["flag"] == "1" and not parse_faults("")


def test_worker_command_uses_this_interpreter(tmp_path: Path):
    assert worker_command(tmp_path) == [sys.executable, "-m", "studio.engine.training.worker", str(tmp_path)]
    json.dumps(worker_command(tmp_path))
