"""SIGTERM, SIGINT and SIGHUP become a "stop" command, so a signal ends a run exactly like the Stop button:
the current step finishes, a checkpoint is written, and the worker exits 130.

Two refinements keep a stop prompt:
* before training starts there is nothing to save, so a stop (signal or command) interrupts the set-up at
  once (a model load can take a minute) by raising StoppedBeforeTraining in the main thread;
* a second stop signal within FORCE_EXIT_WINDOW_S means the person will not wait: the worker exits 130 at
  once, keeping the last good checkpoint.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType

from studio.engine.control import ControlCommand
from studio.engine.training.control_channel import ControlChannel

STOP_SIGNALS: tuple[signal.Signals, ...] = tuple(
    sig for sig in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGHUP", None)) if sig is not None
)
FORCE_EXIT_WINDOW_S = 5.0  # a second stop signal within this many seconds ends the worker at once
STOPPED_EXIT = 130  # ExitCode.STOPPED


class StoppedBeforeTraining(BaseException):
    """Raised in the main thread when a stop arrives during set-up (a BaseException, so that no library's
    `except Exception` around a model load swallows it)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StopHandlers:
    """The worker's stop signals and early stop commands; `training_started()` switches from "stop at
    once" to "finish the step and checkpoint"."""

    def __init__(self, channel: ControlChannel, force_exit: Callable[[int], object] = os._exit) -> None:
        self._channel = channel
        self._force_exit = force_exit
        self._training = False
        self._first_at: float | None = None
        self._asked: str | None = None  # a stop command's reason, on its way to the main thread
        channel.on_command = self._take_command

    def install(self) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_signal)

    def training_started(self) -> None:
        self._training = True

    def _take_command(self, command: ControlCommand) -> bool:
        """A stop during set-up interrupts the main thread (a real signal, so a sleep or a load wakes up)."""
        if command.command != "stop" or self._training or self._asked is not None:
            return False
        self._asked = str(command.args.get("reason", "user"))
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)
        return True

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if self._asked is not None and not self._training:
            raise StoppedBeforeTraining(self._asked)
        name = signal.Signals(signum).name
        now = time.monotonic()
        if self._first_at is not None and now - self._first_at <= FORCE_EXIT_WINDOW_S:
            self._force_exit(STOPPED_EXIT)
            return
        self._first_at = now
        if not self._training:
            raise StoppedBeforeTraining(name)
        self._channel.put(ControlCommand("stop", {"reason": name}))


def stop_set_up_on_signals() -> None:
    """A follower rank's handlers until its lockstep takes over: a stop signal ends the set-up at once."""

    def _handler(signum: int, _frame: FrameType | None) -> None:
        raise StoppedBeforeTraining(signal.Signals(signum).name)

    for sig in STOP_SIGNALS:
        signal.signal(sig, _handler)
