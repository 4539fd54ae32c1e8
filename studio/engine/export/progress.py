"""Progress and cancellation for export steps, so a CLI bar and a GUI dialog can drive the same code.

Every long export function takes `progress(message, fraction)` and `should_cancel()`; `Steps` maps each
sub-step onto its share of the whole and turns a cancel request into one well-known error.
"""

from __future__ import annotations

from collections.abc import Callable

from studio.engine.errors import ExitCode, StudioError

ProgressFn = Callable[[str, float], None]
CancelFn = Callable[[], bool]


def no_progress(_message: str, _fraction: float) -> None:
    """The default when nobody is watching."""


def never_cancel() -> bool:
    return False


def cancelled() -> StudioError:
    return StudioError(
        what="The export was cancelled.",
        why="You asked Studio to stop; nothing half-written was kept.",
        actions=["Start the export again when you are ready."],
        code="export_cancelled",
        exit_code=ExitCode.STOPPED,
    )


class Steps:
    """Reports sub-step progress as a share of one overall range and checks for cancel at each report."""

    def __init__(
        self,
        progress: ProgressFn | None = None,
        should_cancel: CancelFn | None = None,
        start: float = 0.0,
        end: float = 1.0,
    ) -> None:
        self.progress = progress or no_progress
        self.should_cancel = should_cancel or never_cancel
        self.start = start
        self.end = end

    def report(self, message: str, fraction: float) -> None:
        """Report `fraction` (0..1) of this range; raises the cancel error if a stop was asked for."""
        self.check()
        clamped = min(max(fraction, 0.0), 1.0)
        self.progress(message, self.start + (self.end - self.start) * clamped)

    def check(self) -> None:
        if self.should_cancel():
            raise cancelled()

    def sub(self, start: float, end: float) -> Steps:
        """A nested range, given as fractions of this one."""
        span = self.end - self.start
        return Steps(self.progress, self.should_cancel, self.start + span * start, self.start + span * end)
