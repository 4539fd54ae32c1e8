"""The training worker process: `python -m studio.engine.training.worker RUN_DIR` (and the frozen app's worker
flag) land in `main`, which trains one run and exits.

It reads RUN_DIR/config.json, streams events as JSON lines on stdout and into RUN_DIR/events.jsonl, takes
control commands from stdin and RUN_DIR/control/, and resumes from the newest good checkpoint when the run
has one. Exit codes are studio.engine.errors.ExitCode: 0 done (or released for a later resume),
1 error, 2 dataset unusable, 3 out of memory, 4 model not found, 130 stopped.

The training itself is studio.engine.training.recipe; this module is the process around it: signals,
heartbeats, the registry row, and every failure turned into an `error` event. It stays light to import, so
the stop handlers and heartbeats are up before torch and transformers start loading.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import sys
import traceback
from pathlib import Path
from typing import NoReturn, TextIO

from studio.engine.config import TrainConfig
from studio.engine.errors import ExitCode, StudioError
from studio.engine.events import Error, Stopped
from studio.engine.runs.creation import new_run
from studio.engine.runs.folders import events_file, load_run_config, logs_dir, trainer_staging_dir
from studio.engine.runs.registry import Registry
from studio.engine.training import checkpoints
from studio.engine.training.control_channel import ControlChannel
from studio.engine.training.disk import disk_full_error, is_disk_full, run_disk_needed
from studio.engine.training.distributed import is_main_process
from studio.engine.training.heartbeats import Heartbeats, log_stderr
from studio.engine.training.oom import is_out_of_memory, out_of_memory_error
from studio.engine.training.setup import model_folder
from studio.engine.training.signals import StopHandlers, StoppedBeforeTraining, stop_set_up_on_signals
from studio.engine.training.sinks import EventEmitter, EventSink, FileSink, StreamSink, last_seq


def main(argv: list[str] | None = None) -> int:
    """The worker's command line: one RUN_DIR. Under `accelerate launch`, rank 0 alone speaks for the run."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m studio.engine.training.worker RUN_DIR\n")
        return int(ExitCode.ERROR)
    run_dir = Path(args[0]).resolve()
    if not is_main_process():
        return _follow(run_dir)
    # Keep the event stream clean: libraries that print (even from C) write to stderr instead of stdout.
    events_out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    _stdout_to_stderr()
    code = run_worker(
        run_dir,
        [StreamSink(events_out), FileSink(events_file(run_dir))],
        stdin=sys.stdin,
        handle_signals=True,
    )
    events_out.flush()
    return code


def _follow(run_dir: Path) -> int:
    """A follower rank: stop handlers first (torchrun forwards a stop to every rank at once), then train."""
    try:
        stop_set_up_on_signals()
        _stdout_to_stderr()  # what libraries print must not land in rank 0's event stream (one shared stdout)
        # torch and transformers take seconds to import: only after the handlers, so a stop is never lost.
        from studio.engine.training.follower import run_follower

        _exit_without_teardown(run_follower(run_dir))
    except StoppedBeforeTraining:  # rank 0 ends as well, with the `stopped` event
        return int(ExitCode.STOPPED)


def _exit_without_teardown(code: int) -> NoReturn:
    """A follower's work is done once its rank record is written. Python's normal exit then runs the C++
    destructors of torch's threads, and one of them sometimes ends the process with "terminate called without
    an active exception" (SIGABRT), which makes torchrun fail the whole run after `completed`. Leave at once."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _stdout_to_stderr() -> None:
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr


def run_worker(
    run_dir: Path, sinks: list[EventSink], stdin: TextIO | None = None, handle_signals: bool = False
) -> int:
    """Train the run in `run_dir`; returns the exit code. Every failure becomes an `error` event."""
    run_id = run_dir.name
    emitter = EventEmitter(run_id, sinks, start_seq=last_seq(events_file(run_dir)))
    channel = ControlChannel(run_dir, stdin)
    stops = StopHandlers(channel)
    if handle_signals:
        stops.install()
    beats = Heartbeats(emitter)
    registry = Registry()
    config: TrainConfig | None = None
    try:
        config = load_run_config(run_dir)
        _ensure_registered(registry, run_id, run_dir, config)
        registry.mark_running(run_id)
        try:
            # The recipe pulls in torch, transformers and TRL (seconds): imported once the stop handlers and
            # heartbeats are up, so a stop during the import is honoured and the supervisor sees a live worker.
            from studio.engine.training.recipe import TrainingRecipe, WorkerContext

            context = WorkerContext(run_dir, emitter, channel, beats, registry, stops.training_started)
            recipe = TrainingRecipe(context, config)
            recipe.setup()
            return recipe.finish(recipe.train())
        except StoppedBeforeTraining as stop:
            return _stopped_before_training(emitter, registry, run_dir, stop.reason)
    except StudioError as error:
        return _fail(emitter, registry, run_id, error)
    except Exception as exc:
        return _fail(emitter, registry, run_id, _unexpected(run_dir, config, exc))
    finally:
        beats.close()
        channel.close()
        emitter.close()


def _ensure_registered(registry: Registry, run_id: str, run_dir: Path, config: TrainConfig) -> None:
    """A run dir prepared by hand (or by a test) still shows up in `studio runs`, named after its folder."""
    if registry.get(run_id) is None:
        new_run(registry, config, run_id, folder=run_dir)


def _stopped_before_training(emitter: EventEmitter, registry: Registry, run_dir: Path, reason: str) -> int:
    """A stop during set-up: nothing new to save; the run keeps the checkpoints it had and resumes from them."""
    good = checkpoints.latest_good(run_dir)
    emitter.emit(
        Stopped, step=good.step if good else 0, checkpoint_path=str(good.path) if good else None, reason=reason
    )
    registry.mark_finished(run_dir.name, "stopped", int(ExitCode.STOPPED))
    return int(ExitCode.STOPPED)


def _fail(emitter: EventEmitter, registry: Registry, run_id: str, error: StudioError) -> int:
    """Report the error and mark the run failed; on a full disk either write may fail, and neither may hide the
    error: stdout still carries the event, and a row left "running" becomes "interrupted" once this worker is
    gone (Registry.reconcile)."""
    try:
        emitter.emit(
            Error,
            code=error.code,
            message=error.what,
            hint=error.why,
            actions=list(error.actions),
            exit_code=int(error.exit_code),
        )
    except OSError as exc:  # events.jsonl could not take it; the other sinks did
        log_stderr(f"error event not recorded in events.jsonl: {exc}\n")
    try:
        registry.mark_finished(run_id, "failed", int(error.exit_code))
    except (sqlite3.Error, OSError) as exc:
        log_stderr(f"run not marked failed in the registry: {exc}\n")
    return int(error.exit_code)


def _unexpected(run_dir: Path, config: TrainConfig | None, exc: Exception) -> StudioError:
    """A failure no part of the worker turned into a StudioError: a full disk, out of memory, or a bug."""
    if is_disk_full(exc, run_dir):
        return _disk_full(run_dir, config, exc)
    if config is not None and is_out_of_memory(exc):
        return out_of_memory_error(config)
    log = _write_error_log(run_dir, traceback.format_exc())
    return StudioError(
        what="Training stopped because of an unexpected problem.",
        why=f"{type(exc).__name__}: {exc}",
        actions=[
            f"Look at the details in {log}." if log else "Look at the details in the worker's error output.",
            "Resume the run: `studio resume " + run_dir.name + "`.",
            "If it happens again, report it with that file attached.",
        ],
        code="internal_error",
    )


def _disk_full(run_dir: Path, config: TrainConfig | None, exc: BaseException) -> StudioError:
    """The `disk_full` error for a write that found the disk full, with the planner's estimate of what the run
    needs. The checkpoint the Trainer was writing is removed (it was never sealed, and its space is what the
    user needs); sealed checkpoints stay."""
    for partial in trainer_staging_dir(run_dir).glob("checkpoint-*"):
        shutil.rmtree(partial, ignore_errors=True)
    log_stderr(f"disk full: {type(exc).__name__}: {exc}\n")
    needed = None
    if config is not None:
        with contextlib.suppress(Exception):  # the advice is a bonus; the error must go out
            needed = run_disk_needed(config, model_folder(config), run_dir)
    return disk_full_error(run_dir, run_dir.name, needed)


def _write_error_log(run_dir: Path, details: str) -> Path | None:
    """Save a traceback in RUN_DIR/logs/worker-error.log; None when it cannot be written (a full disk), so the
    error event goes out all the same (with the details on stderr)."""
    log = logs_dir(run_dir) / "worker-error.log"
    try:
        log.write_text(details, encoding="utf-8")
        return log
    except OSError:
        log_stderr(details)
        return None
