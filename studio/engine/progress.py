"""One way for long engine work to report progress and to hear a request to stop: the TaskContext.

Validation, scoring, the quality check, export and the built-in model all take a TaskContext, so the same
engine code runs under a CLI bar, a GUI background task (gui/tasks.TaskState implements the protocol), a
script or a test, and never knows which. A stop is always one error, Cancelled; each workflow gives it
its own plain words (what was stopped, what to do next).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from studio.engine.errors import ExitCode, StudioError


class TaskContext(Protocol):
    """What a long engine task may tell whoever started it, and how it hears that it should stop."""

    def report(self, message: str, fraction: float) -> None:
        """Say what is happening now and how much of the whole task (0..1) is done."""

    def check(self) -> None:
        """Raise Cancelled if someone asked the task to stop; call it between units of work."""

    def cancelled(self) -> bool:
        """Whether someone asked the task to stop (for code that must tidy up before it raises)."""


@dataclass
class Cancelled(StudioError):  # noqa: N818 - a stop someone asked for, not a failure
    """The task stopped because someone asked it to: not a failure, so the GUI shows it as a cancel."""

    what: str = "The task was cancelled."
    why: str = "You asked Studio to stop."
    actions: list[str] = field(default_factory=lambda: ["Start it again when you are ready."])
    code: str = "cancelled"
    exit_code: ExitCode = ExitCode.STOPPED


class Callbacks:
    """A TaskContext made of plain functions, for the CLI, scripts and tests; either may be left out."""

    def __init__(
        self,
        on_report: Callable[[str, float], None] | None = None,
        stop_requested: Callable[[], bool] | None = None,
    ) -> None:
        self._on_report = on_report
        self._stop_requested = stop_requested

    def report(self, message: str, fraction: float) -> None:
        if self._on_report is not None:
            self._on_report(message, fraction)

    def check(self) -> None:
        if self.cancelled():
            raise Cancelled()

    def cancelled(self) -> bool:
        return self._stop_requested is not None and self._stop_requested()


QUIET: TaskContext = Callbacks()
"""The default when nobody is watching: reports go nowhere and nothing asks the task to stop."""


class Span:
    """A share [start, end] of a parent task: reports are scaled into it and check for a cancel first.

    A workflow wraps the context it was given in a Span with its own `error`, so a cancel says what was
    stopped ("The export was cancelled.") whoever asked for it; `sub` hands a step its part of the range.
    """

    def __init__(
        self,
        parent: TaskContext = QUIET,
        start: float = 0.0,
        end: float = 1.0,
        error: Callable[[], Cancelled] = Cancelled,
    ) -> None:
        self.parent, self.start, self.end, self.error = parent, start, end, error

    def report(self, message: str, fraction: float) -> None:
        self.check()
        clamped = min(max(fraction, 0.0), 1.0)
        self.parent.report(message, self.start + (self.end - self.start) * clamped)

    def check(self) -> None:
        if self.parent.cancelled():
            raise self.error()

    def cancelled(self) -> bool:
        return self.parent.cancelled()

    def sub(self, start: float, end: float) -> Span:
        """A nested range, given as fractions of this one."""
        span = self.end - self.start
        return Span(self.parent, self.start + span * start, self.start + span * end, self.error)
