"""What a cancelled export says, and the Span that every export step reports through.

The export entry points take the caller's TaskContext (a CLI bar, a GUI task) and wrap it with
`export_steps`; each step gets its share of the whole through `Span.sub`, and a cancel at any report or
check raises the export's own Cancelled.
"""

from __future__ import annotations

from studio.engine.progress import Cancelled, Span, TaskContext


def cancelled() -> Cancelled:
    return Cancelled(
        what="The export was cancelled.",
        why="You asked Studio to stop; nothing half-written was kept.",
        actions=["Start the export again when you are ready."],
        code="export_cancelled",
    )


def export_steps(task: TaskContext) -> Span:
    """The whole export's progress range, over the caller's task."""
    return Span(task, error=cancelled)
