"""Cancellable background tasks for short jobs (validation, model search, planning), in the Orange3 style.

A task is a plain function that receives a TaskState, the GUI's engine TaskContext (studio.engine.progress):
it reports progress and status through it and calls `check()`, which raises the one Cancelled error once
the GUI asked it to stop. The GUI hears about all of it through queued signals, so no widget is ever
touched from a worker thread and the GUI thread never waits on the engine.

All tasks share one worker thread. Tasks import heavy libraries on first use, and two threads importing
the same package at once can see it half-initialized (PySide's import hook touches lazy module
attributes, as in transformers and pydantic), so imports must never run concurrently. One thread rules
that out; a cancelled task gives the thread back at its next `check()`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from studio.engine.errors import StudioError
from studio.engine.progress import Cancelled

log = logging.getLogger(__name__)

TaskFn = Callable[["TaskState"], Any]

_pool: QThreadPool | None = None


def worker_pool() -> QThreadPool:
    """The one background thread every TaskRunner uses."""
    global _pool
    if _pool is None:
        _pool = QThreadPool()
        _pool.setMaxThreadCount(1)
        _pool.setExpiryTimeout(-1)
    return _pool


class TaskState(QObject):
    """What a running task may tell the GUI, and how the GUI asks it to stop: a TaskContext. Thread-safe.

    Signals:
        progressChanged(float): fraction done in [0, 1], emitted only when the value really changes.
        statusChanged(str): a short sentence about the current step.
        partialResult(object): an intermediate result worth showing early.
    """

    progressChanged = Signal(float)  # noqa: N815 - Qt signal naming
    statusChanged = Signal(str)  # noqa: N815 - Qt signal naming
    partialResult = Signal(object)  # noqa: N815 - Qt signal naming
    _done = Signal(object)
    _failed = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self._cancel = threading.Event()
        self._progress = -1.0
        self._status = ""

    def set_progress(self, fraction: float) -> None:
        value = round(min(max(float(fraction), 0.0), 1.0), 3)
        if value != self._progress:
            self._progress = value
            self.progressChanged.emit(value)

    def set_status(self, text: str) -> None:
        if text != self._status:
            self._status = text
            self.statusChanged.emit(text)

    def report(self, text: str, fraction: float) -> None:
        """TaskContext.report: the step in words and the fraction done."""
        self.set_status(text)
        self.set_progress(fraction)

    def set_partial_result(self, value: object) -> None:
        self.partialResult.emit(value)

    def cancel(self) -> None:
        self._cancel.set()

    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Stop here if the GUI asked to cancel (the runner reports Cancelled as `cancelled`)."""
        if self._cancel.is_set():
            raise Cancelled()


class _Job(QRunnable):
    def __init__(self, fn: TaskFn, state: TaskState, what: str) -> None:
        super().__init__()
        self._fn, self._state, self._what = fn, state, what

    def run(self) -> None:
        state = self._state
        if state.cancelled():  # dropped while it waited for the thread
            state._failed.emit(None)
            return
        try:
            result = self._fn(state)
        except Cancelled:
            state._failed.emit(None)
        except StudioError as exc:
            state._failed.emit(exc)
        except Exception as exc:  # a bug or an unexpected library error must not kill the app
            log.exception("Background task failed: %s", self._what)
            state._failed.emit(
                StudioError(
                    what=f"Something went wrong while {self._what}.",
                    why=f"{type(exc).__name__}: {exc}",
                    actions=["Try again.", "If it keeps happening, restart Studio and report the problem."],
                    code="task_failed",
                )
            )
        else:
            state._done.emit(result)


class TaskRunner(QObject):
    """Runs one task at a time for one owner; starting a new task cancels and forgets the previous one.

    Signals:
        started(): a task began.
        progressChanged(float), statusChanged(str), partialResult(object): forwarded from the task.
        finished(object): the task's result.
        failed(object): a StudioError a person can act on.
        cancelled(): the task stopped because it was asked to.
        busyChanged(bool): whether a task is running.
    """

    started = Signal()
    progressChanged = Signal(float)  # noqa: N815 - Qt signal naming
    statusChanged = Signal(str)  # noqa: N815 - Qt signal naming
    partialResult = Signal(object)  # noqa: N815 - Qt signal naming
    finished = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    busyChanged = Signal(bool)  # noqa: N815 - Qt signal naming

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = worker_pool()
        self._state: TaskState | None = None
        self._orphans: list[TaskState] = []

    @property
    def busy(self) -> bool:
        return self._state is not None

    def start(self, fn: TaskFn, what: str) -> TaskState:
        """Run `fn(state)` in the background; `what` completes "Something went wrong while ..."."""
        self._drop_current()
        state = TaskState()
        # Bound slots of this GUI-thread object: Qt queues every emission from the worker thread.
        state.progressChanged.connect(self._on_progress)
        state.statusChanged.connect(self._on_status)
        state.partialResult.connect(self._on_partial)
        state._done.connect(self._on_done)
        state._failed.connect(self._on_failed)
        self._state = state
        self.started.emit()
        self.busyChanged.emit(True)
        self._pool.start(_Job(fn, state, what))
        return state

    def cancel(self) -> None:
        """Ask the running task to stop; `cancelled` follows once it has."""
        if self._state is not None:
            self._state.cancel()

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Cancel this runner's tasks and wait for the worker thread; call before the owner goes away."""
        self._drop_current()
        for state in self._orphans:
            state.cancel()
        done = self._pool.waitForDone(timeout_ms)
        self._orphans.clear()
        return done

    def _drop_current(self) -> None:
        if self._state is not None:
            self._state.cancel()
            self._orphans.append(self._state)
            self._state = None
            self.busyChanged.emit(False)

    def _current(self) -> bool:
        return self.sender() is self._state and self._state is not None

    @Slot(float)
    def _on_progress(self, value: float) -> None:
        if self._current():
            self.progressChanged.emit(value)

    @Slot(str)
    def _on_status(self, text: str) -> None:
        if self._current():
            self.statusChanged.emit(text)

    @Slot(object)
    def _on_partial(self, value: object) -> None:
        if self._current():
            self.partialResult.emit(value)

    def _finish(self) -> TaskState | None:
        state = self.sender()
        if state in self._orphans:
            self._orphans.remove(state)
        if state is not self._state or self._state is None:
            return None
        self._state = None
        self.busyChanged.emit(False)
        return state

    @Slot(object)
    def _on_done(self, result: object) -> None:
        state = self._finish()
        if state is not None:
            if state.cancelled():
                self.cancelled.emit()
            else:
                self.finished.emit(result)

    @Slot(object)
    def _on_failed(self, error: object) -> None:
        state = self._finish()
        if state is not None:
            if error is None or state.cancelled():
                self.cancelled.emit()
            else:
                self.failed.emit(error)
