"""Signals, hangs and crashes: the worker's own session, SIGHUP, a second signal, a stop during set-up, a
frozen worker, and the last words of one that died."""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from studio.engine.control import ControlCommand
from studio.engine.errors import ExitCode
from studio.engine.events import Event, Stopped
from studio.engine.runs.registry import Registry
from studio.engine.training.control_channel import ControlChannel
from studio.engine.training.signals import StopHandlers, StoppedBeforeTraining
from studio.engine.training.supervisor import Supervisor, rank0_exit_code
from tests.engine.training.worker_runs import read_events

STARTED = json.dumps({"event": "started", "ts": "2026-12-06T00:00:00Z", "run_id": "fake", "seq": 1, "v": 1})


def fake_worker(body: str) -> list[str]:
    """A stand-in worker process: says it started, then does what `body` says."""
    return [sys.executable, "-c", f"import os, sys, time\nprint({STARTED!r}, flush=True)\n{textwrap.dedent(body)}"]


def test_the_launchers_143_after_rank_0_stopped_reads_as_stopped():
    # `accelerate launch` exits 143 when the SIGTERM it forwarded reached it while its ranks were finishing.
    assert rank0_exit_code(143, Stopped(run_id="r", step=2)) == ExitCode.STOPPED
    assert rank0_exit_code(-15, Stopped(run_id="r", step=2)) == ExitCode.STOPPED
    assert rank0_exit_code(143, None) == 143


def test_the_worker_runs_in_its_own_session(tmp_path: Path):
    supervisor = Supervisor(tmp_path, command=fake_worker("time.sleep(30)"))
    supervisor.start()
    try:
        assert supervisor.pid is not None
        assert os.getsid(supervisor.pid) == supervisor.pid != os.getsid(0)
    finally:
        supervisor.kill()
    assert supervisor.wait(10).status == "interrupted"


def test_a_frozen_worker_is_warned_about_then_ended_and_left_resumable(tmp_path: Path):
    warnings: list[float] = []
    hangs: list[float] = []
    supervisor = Supervisor(tmp_path, command=fake_worker("time.sleep(120)"), silence_limit_s=0.5,
                            hang_limit_s=1.5, on_silence=warnings.append, on_hang=hangs.append)
    started = time.monotonic()
    supervisor.start()
    outcome = supervisor.wait(30)
    assert time.monotonic() - started < 15
    assert warnings and hangs and hangs[0] >= 1.5
    assert outcome.hung and outcome.status == "interrupted"
    crash = outcome.crash_error("fake")
    assert crash is not None and "stopped responding" in crash.what
    assert "studio resume fake" in " ".join(crash.actions)


def test_a_worker_that_dies_shows_its_last_lines_not_only_ended_unexpectedly(tmp_path: Path):
    log = tmp_path / "logs" / "worker.stderr.log"
    log.parent.mkdir()
    log.write_text("an earlier worker's complaint\n")
    body = """
        sys.stderr.write("Traceback (most recent call last):\\n  File 'x.py', line 1\\nValueError: boom\\n")
        sys.exit(1)
    """
    supervisor = Supervisor(tmp_path, command=fake_worker(body))
    supervisor.start()
    outcome = supervisor.wait(30)
    assert outcome.status == "interrupted" and outcome.exit_code == 1
    assert outcome.stderr_tail.endswith("ValueError: boom")
    assert "earlier worker" not in outcome.stderr_tail
    crash = outcome.crash_error("fake")
    assert crash is not None and "exit code 1" in crash.what and "ValueError: boom" in crash.why


def test_a_worker_that_ends_normally_has_no_crash_report(tmp_path: Path):
    supervisor = Supervisor(tmp_path, command=fake_worker("sys.exit(0)"))
    supervisor.start()
    outcome = supervisor.wait(30)
    assert outcome.crash_error("fake") is None and outcome.stderr_tail == ""


@pytest.fixture
def handlers(tmp_path: Path):
    """Studio's stop handlers installed in this process, with a recorded instead of a real forced exit."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
    channel = ControlChannel(tmp_path)
    exits: list[int] = []
    stops = StopHandlers(channel, force_exit=exits.append)
    stops.install()
    yield stops, channel, exits
    channel.close()
    for sig, handler in previous.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_a_signal_during_training_asks_for_a_checkpointed_stop(handlers, sig):
    stops, channel, exits = handlers
    stops.training_started()
    signal.raise_signal(sig)
    command = channel.get(timeout=1)
    assert command == ControlCommand("stop", {"reason": signal.Signals(sig).name}) and not exits


def test_a_second_signal_within_seconds_forces_an_immediate_exit(handlers):
    stops, channel, exits = handlers
    stops.training_started()
    signal.raise_signal(signal.SIGTERM)
    signal.raise_signal(signal.SIGHUP)
    assert exits == [ExitCode.STOPPED]
    assert channel.get(timeout=1) is not None and channel.get() is None  # the first still asked for a stop


def test_a_signal_during_set_up_ends_it_at_once(handlers):
    with pytest.raises(StoppedBeforeTraining, match="SIGHUP"):
        signal.raise_signal(signal.SIGHUP)
        time.sleep(5)  # what a long model load would be doing


def test_the_stop_button_during_set_up_interrupts_it(handlers, tmp_path: Path):
    from studio.engine.training.control_channel import send_to_run_dir

    started = time.monotonic()
    with pytest.raises(StoppedBeforeTraining):
        send_to_run_dir(tmp_path, ControlCommand("stop"))
        time.sleep(10)
    assert time.monotonic() - started < 3


@pytest.mark.timeout(120)
def test_a_real_worker_stopped_while_loading_ends_within_5_s_and_stays_resumable(make_run):
    run_dir = make_run("loading")
    seen: list[Event] = []
    supervisor = Supervisor(run_dir, on_event=seen.append,
                            env={"STUDIO_TEST_FAULTS": "sleep_while_loading=60", "OMP_NUM_THREADS": "2"})
    supervisor.start()
    deadline = time.monotonic() + 90
    while not any(getattr(e, "phase", "") == "preparing_data" or getattr(e, "message", "") == "Loading the model"
                  for e in seen):
        assert time.monotonic() < deadline and supervisor.running(), seen
        time.sleep(0.1)
    time.sleep(1.0)  # inside the (slow) model load
    asked = time.monotonic()
    assert supervisor.stop()
    outcome = supervisor.wait(30)
    assert time.monotonic() - asked < 5
    assert outcome.exit_code == ExitCode.STOPPED and outcome.status == "stopped", outcome
    assert read_events(run_dir)[-1]["event"] == "stopped"
    assert Registry().get(run_dir.name).status == "stopped"
