"""The supervisor: starts a worker process for a run, reads its events on a thread, watches for silence,
sends control commands and reports how it ended. Pure Python with plain callbacks; the GUI wraps it in a
QThread bridge, the CLI calls it directly.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from studio.engine.control import ControlCommand
from studio.engine.errors import ExitCode, StudioError
from studio.engine.events import Event, EventParseError, parse_event
from studio.engine.frozen import frozen_worker_command, is_frozen
from studio.engine.runs.folders import load_run_config, logs_dir
from studio.engine.training.distributed import launch_command

SILENCE_LIMIT_S = 60.0
# A worker beats every 10 s whatever it does (studio.engine.training.heartbeats.HEARTBEAT_S), so this much silence
# means it is frozen: it is killed, so a queue left overnight moves on, and the run resumes from a checkpoint.
HANG_LIMIT_S = 300.0
STDERR_TAIL_LINES = 12

EventCallback = Callable[[Event], None]
SilenceCallback = Callable[[float], None]


def worker_command(run_dir: Path) -> list[str]:
    """How to start a worker: `python -m` here, the bundle's own executable in worker mode when frozen, and
    `accelerate launch` (one worker per device) when the run's config asks for several processes."""
    if is_frozen():
        return frozen_worker_command(run_dir)
    processes = _num_processes(run_dir)
    if processes > 1:
        return launch_command(run_dir, processes)
    return [sys.executable, "-m", "studio.engine.training.worker", str(run_dir)]


def _num_processes(run_dir: Path) -> int:
    try:
        return load_run_config(run_dir).num_processes
    except StudioError:
        return 1  # the worker itself reports what is wrong with the config


def rank0_exit_code(code: int, last_event: Event | None) -> int:
    """The exit code the worker meant. `accelerate launch` exits 1 whenever a rank exits non-zero, and 143
    (128 + SIGTERM) when the signal reached it while its ranks were finishing, so a distributed run that
    stopped (130) or failed (2, 3, 4) reads 1 or 143; its last event still says which."""
    if code == ExitCode.OK or last_event is None:
        return code
    if last_event.kind == "stopped":  # the stop was carried out: checkpoint sealed, `stopped` sent
        return int(ExitCode.STOPPED)
    if last_event.kind == "error" and code == ExitCode.ERROR:
        return int(getattr(last_event, "exit_code", code))
    return code


@dataclass(frozen=True)
class WorkerOutcome:
    exit_code: int
    last_event: Event | None
    silent: bool
    hung: bool = False  # killed by the supervisor after HANG_LIMIT_S of silence
    stderr_tail: str = ""  # the last lines the worker wrote to its log, when it ended without a word

    def crash_error(self, run_id: str) -> StudioError | None:
        """What to tell the user when the worker vanished without an error event (killed, crashed, hung)."""
        if self.status != "interrupted":
            return None
        if self.hung:
            what = "The training process stopped responding and was ended."
        else:
            what = f"The training process ended unexpectedly (exit code {self.exit_code})."
        why = f"Its last words:\n{self.stderr_tail}" if self.stderr_tail else "It wrote nothing about why."
        return StudioError(
            what=what,
            why=why,
            actions=[
                f"Continue from the last checkpoint: `studio resume {run_id}`.",
                "If it ended for lack of memory, close other programs or choose a smaller batch size.",
                "If it happens again, report it with the run's logs/worker.stderr.log attached.",
            ],
            code="worker_crashed",
        )

    @property
    def status(self) -> str:
        """The registry status this ending means. The last event counts too: `accelerate launch` reports
        any non-zero exit of its ranks as 1."""
        last = self.last_event.kind if self.last_event is not None else None
        if self.exit_code == ExitCode.OK:
            return "paused" if last == "paused" else "completed"
        if self.exit_code == ExitCode.STOPPED or last == "stopped":
            return "stopped"
        if last == "error":
            return "failed"
        return "interrupted"  # killed or crashed without a word: resumable from the last good checkpoint


class Supervisor:
    """One worker for one run. Callbacks run on the reader thread; keep them short."""

    def __init__(
        self,
        run_dir: Path,
        on_event: EventCallback | None = None,
        on_silence: SilenceCallback | None = None,
        on_bad_line: Callable[[str], None] | None = None,
        silence_limit_s: float = SILENCE_LIMIT_S,
        env: dict[str, str] | None = None,
        hang_limit_s: float = HANG_LIMIT_S,
        on_hang: SilenceCallback | None = None,
        command: list[str] | None = None,
    ) -> None:
        self.run_dir = run_dir
        self._on_event = on_event or (lambda _event: None)
        self._on_silence = on_silence or (lambda _seconds: None)
        self._on_bad_line = on_bad_line or (lambda _line: None)
        self._silence_limit = silence_limit_s
        self._hang_limit = max(hang_limit_s, silence_limit_s)
        self._on_hang = on_hang or (lambda _seconds: None)
        self._hung = False
        self._stderr_from = 0
        self._env = env
        self._command = command  # None: the usual worker for run_dir (worker_command)
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._last_heard = time.monotonic()
        self._last_event: Event | None = None
        self._silent = False
        self._write_lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    @property
    def stderr_log(self) -> Path:
        return logs_dir(self.run_dir) / "worker.stderr.log"

    def start(self) -> None:
        stderr = self.stderr_log.open("a", encoding="utf-8")
        self._stderr_from = stderr.tell()
        env = {**os.environ, **(self._env or {}), "PYTHONUNBUFFERED": "1"}
        # Its own session: closing the terminal or the window's process group does not take training with it
        # (the CLI forwards Ctrl-C as a stop instead).
        self._process = subprocess.Popen(
            self._command or worker_command(self.run_dir),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            env=env,
            start_new_session=True,
        )
        stderr.close()
        self._last_heard = time.monotonic()
        self._reader = threading.Thread(target=self._read, name="worker-events", daemon=True)
        self._reader.start()
        threading.Thread(target=self._watch, name="worker-watchdog", daemon=True).start()

    def send(self, command: ControlCommand) -> bool:
        """False when the worker is gone (its stdin is closed)."""
        process = self._process
        if process is None or process.stdin is None or process.poll() is not None:
            return False
        try:
            with self._write_lock:
                process.stdin.write(command.to_json() + "\n")
                process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            return False
        return True

    def pause(self) -> bool:
        return self.send(ControlCommand("pause"))

    def resume(self) -> bool:
        return self.send(ControlCommand("resume"))

    def stop(self) -> bool:
        return self.send(ControlCommand("stop"))

    def pause_release(self) -> bool:
        return self.send(ControlCommand("pause_release"))

    def kill(self) -> None:
        """Last resort for a hung worker; the run becomes 'interrupted' and resumes from its last checkpoint."""
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal.SIGKILL)  # every rank of a distributed run too

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def wait(self, timeout: float | None = None) -> WorkerOutcome:
        assert self._process is not None, "start() first"
        code = self._process.wait(timeout)
        if self._reader is not None:
            self._reader.join(timeout=10)
        if self._process.stdin:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        outcome = WorkerOutcome(
            exit_code=rank0_exit_code(code, self._last_event),
            last_event=self._last_event,
            silent=self._silent,
            hung=self._hung,
        )
        if outcome.status == "interrupted":
            outcome = replace(outcome, stderr_tail=self._stderr_tail())
        return outcome

    def _stderr_tail(self) -> str:
        """The last lines this worker wrote (a crash's traceback), not those of earlier workers of the run."""
        try:
            with self.stderr_log.open("rb") as log:
                log.seek(max(self._stderr_from, log.seek(0, os.SEEK_END) - 64_000))
                text = log.read().decode("utf-8", "replace")
        except OSError:
            return ""
        lines = [line for line in text.splitlines() if line.strip()]
        return "\n".join(lines[-STDERR_TAIL_LINES:])

    def seconds_since_heard(self) -> float:
        return time.monotonic() - self._last_heard

    # ---- threads ------------------------------------------------------------------------------------

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self._last_heard = time.monotonic()
            self._silent = False
            if not line.strip():
                continue
            try:
                event = parse_event(line)
            except EventParseError:
                self._on_bad_line(line.rstrip("\n"))
                continue
            if event.kind != "heartbeat":
                self._last_event = event
            self._on_event(event)

    def _watch(self) -> None:
        while self.running():
            time.sleep(min(1.0, self._silence_limit / 4))
            quiet = self.seconds_since_heard()
            if quiet >= self._silence_limit and not self._silent and self.running():
                self._silent = True
                self._on_silence(quiet)
            if quiet >= self._hang_limit and self._silent and not self._hung and self.running():
                self._hung = True
                self._on_hang(quiet)
                self.kill()
