"""The background task runner: results, failures and cancellation arrive as signals in the GUI thread."""

from __future__ import annotations

import threading
import time

import pytest

from studio.engine.errors import StudioError
from studio.gui.tasks import TaskRunner, TaskState


@pytest.fixture
def runner(qtbot):
    runner = TaskRunner()
    yield runner
    assert runner.shutdown()


def test_result_and_progress_arrive_in_gui_thread(qtbot, runner):
    seen: list[tuple[str, object, bool]] = []
    main = threading.current_thread()
    runner.progressChanged.connect(lambda v: seen.append(("progress", v, threading.current_thread() is main)))
    runner.statusChanged.connect(lambda s: seen.append(("status", s, threading.current_thread() is main)))

    def work(task: TaskState) -> int:
        assert threading.current_thread() is not main
        for i in range(5):
            task.report("counting", i / 4)
            task.set_progress(i / 4)  # a repeat of the same value is not emitted again
        return 42

    with qtbot.waitSignal(runner.finished, timeout=5000) as blocker:
        runner.start(work, "counting")
    assert blocker.args == [42]
    assert [v for kind, v, _ in seen if kind == "progress"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert all(in_main for _, _, in_main in seen)
    assert not runner.busy


def test_studio_error_is_passed_on_and_other_errors_are_wrapped(qtbot, runner):
    def fail(_task: TaskState) -> None:
        raise StudioError(what="The file is empty.", actions=["Pick another file."])

    with qtbot.waitSignal(runner.failed, timeout=5000) as blocker:
        runner.start(fail, "checking")
    assert blocker.args[0].what == "The file is empty."

    def crash(_task: TaskState) -> None:
        raise KeyError("boom")

    with qtbot.waitSignal(runner.failed, timeout=5000) as blocker:
        runner.start(crash, "checking your data")
    error = blocker.args[0]
    assert isinstance(error, StudioError)
    assert error.what == "Something went wrong while checking your data."
    assert "KeyError" in error.why and error.actions


def test_cancel_stops_the_task_and_reports_cancelled(qtbot, runner):
    started = threading.Event()

    def slow(task: TaskState) -> str:
        started.set()
        while True:
            task.check()
            time.sleep(0.01)

    finished = []
    runner.finished.connect(finished.append)
    runner.start(slow, "waiting")
    assert started.wait(5)
    with qtbot.waitSignal(runner.cancelled, timeout=5000):
        runner.cancel()
    assert not finished and not runner.busy


def test_a_new_task_replaces_the_old_one_whose_result_is_dropped(qtbot, runner):
    release = threading.Event()

    def old(task: TaskState) -> str:
        while not release.wait(0.01):
            task.check()  # a replaced task stops here and frees the worker thread
        return "old"

    results = []
    runner.finished.connect(results.append)
    runner.start(old, "old")
    with qtbot.waitSignal(runner.finished, timeout=5000):
        runner.start(lambda _task: "new", "new")
    release.set()
    assert runner.shutdown()
    qtbot.wait(50)
    assert results == ["new"]
