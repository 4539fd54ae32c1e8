"""GUI test fixtures. Like napari's, every test fails if it leaves a running QTimer, QThread or thread-pool
task, or a top-level widget behind: leaks there become flaky tests and hung CI runs later.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QEvent, QPoint, Qt, QThread, QThreadPool, QTimer
from PySide6.QtWidgets import QApplication, QCheckBox, QMenu, QRadioButton, QWidget

from studio.app import MainWindow, open_main_window
from studio.engine.runs.registry import RunRecord
from studio.wizard.state import WizardState
from studio.wizard.wizard import Wizard
from tests.gui.exporting.tiny_run import install_run, train_tiny_run


def _track(cls: type, method: str, registry: list[weakref.ref], monkeypatch: pytest.MonkeyPatch) -> None:
    original = getattr(cls, method)

    def wrapper(self, *args, **kwargs):
        registry.append(weakref.ref(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, method, wrapper)


def _alive(ref: weakref.ref, check: Callable[[object], bool]) -> bool:
    obj = ref()
    if obj is None:
        return False
    try:
        return check(obj)
    except RuntimeError:  # the C++ object is already deleted
        return False


@pytest.fixture(autouse=True)
def _no_leftovers(
    qapp: QApplication, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[None]:
    timers: list[weakref.ref] = []
    threads: list[weakref.ref] = []
    pools: list[weakref.ref] = []
    _track(QTimer, "start", timers, monkeypatch)
    _track(QThread, "start", threads, monkeypatch)
    _track(QThreadPool, "start", pools, monkeypatch)
    before = set(map(id, qapp.topLevelWidgets()))
    yield
    # pytest-qt has closed and deleteLater()-ed the widgets registered with qtbot by now.
    for _ in range(3):
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        qapp.processEvents()
    problems = []
    running_timers = [ref for ref in timers if _alive(ref, lambda t: t.isActive())]
    if running_timers:
        problems.append(f"{len(running_timers)} QTimer(s) still running")
    if [ref for ref in threads if _alive(ref, lambda t: t.isRunning())]:
        problems.append("a QThread is still running")
    # A task that has just returned may still hold its thread for a moment: allow half a second.
    busy_pools = [ref for ref in pools if _alive(ref, lambda p: not p.waitForDone(500))]
    if busy_pools or QThreadPool.globalInstance().activeThreadCount():
        problems.append("a thread-pool task is still running")
    leaked = [w for w in qapp.topLevelWidgets() if id(w) not in before and _alive(weakref.ref(w), bool)]
    if leaked:  # pyqtgraph's parentless popup menus go with their (Python-owned) plots on collection
        del leaked
        gc.collect()
        leaked = [w for w in qapp.topLevelWidgets() if id(w) not in before and _alive(weakref.ref(w), bool)]
    if getattr(request.node, "hidden_menus_ok", False):
        leaked = [w for w in leaked if not (isinstance(w, QMenu) and not w.isVisible())]
    if leaked:
        problems.append(f"top-level widgets left behind: {[type(w).__name__ for w in leaked]}")
    for ref in busy_pools:
        pool = ref()
        if pool is not None:
            pool.waitForDone(10000)
    for widget in leaked:
        widget.close()
        widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    if problems:
        pytest.fail("The test left things running: " + "; ".join(problems), pytrace=False)


@pytest.fixture
def click(qtbot) -> Callable[[QWidget], None]:
    """Click a shown, enabled widget as a person would; a checkbox or radio button on its box, since in a wide
    row its centre can lie past its text, where a click does nothing."""

    def click_(widget: QWidget) -> None:
        assert widget.isVisible() and widget.isEnabled(), widget
        middle = widget.height() // 2
        pos = QPoint(middle, middle) if isinstance(widget, QCheckBox | QRadioButton) else widget.rect().center()
        qtbot.mouseClick(widget, Qt.MouseButton.LeftButton, pos=pos)

    return click_


@pytest.fixture
def make_wizard(qtbot) -> Iterator[Callable[..., Wizard]]:
    """Wizards that are shut down (background work stopped) and closed when the test ends.

    Held here, not by qtbot, whose weak references let a wizard be collected without its shutdown.
    """
    made: list[Wizard] = []

    def make(state: WizardState | None = None, start: bool = True, show: bool = True) -> Wizard:
        wizard = Wizard(state)
        made.append(wizard)
        if show:
            wizard.resize(1280, 800)
            with qtbot.waitActive(wizard):
                wizard.show()
                wizard.activateWindow()
        if start:
            wizard.start()
            qtbot.waitUntil(lambda: wizard.ready, timeout=60_000)  # the engine loads in the background
        return wizard

    yield make
    for wizard in made:
        wizard.shutdown()
        wizard.close()
        wizard.deleteLater()


@pytest.fixture
def make_window(qtbot) -> Iterator[Callable[..., MainWindow]]:
    """Shown main windows, closed (every page shut down) when the test ends; a run a failed test left training
    is ended first."""
    made: list[MainWindow] = []

    def make(opened: bool = False, state: WizardState | None = None) -> MainWindow:
        """`opened`: as a double-click opens it (the engine loads, unfinished runs offered, notices watched)."""
        wizard = Wizard(state or WizardState(onboarding_done=True), autosave=False)
        window = open_main_window(wizard) if opened else MainWindow(wizard)
        made.append(window)
        window.show()
        return window

    yield make
    for window in made:
        dashboard = window.dashboard
        if dashboard is not None and dashboard.supervisor is not None:  # a test that failed mid-run
            dashboard.supervisor.kill()
            dashboard.supervisor.wait(timeout=30)
            for thread in dashboard._waiters:
                thread.join(timeout=30)
            qtbot.waitUntil(lambda d=dashboard: not d.state.status.alive, timeout=10_000)
        window.close()  # closeEvent shuts every page down
        window.deleteLater()


@pytest.fixture
def tiny_chat_file(tmp_path: Path) -> Path:
    """A small valid chat dataset in the messages format."""
    import json

    path = tmp_path / "chat.jsonl"
    rows = [
        {"messages": [
            {"role": "user", "content": f"What is {i} plus {i}?"},
            {"role": "assistant", "content": f"{i} plus {i} is {2 * i}. Happy to help!"},
        ]}
        for i in range(60)
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def trained_home(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real finished tiny run, trained once for all GUI tests."""
    return train_tiny_run(tmp_path_factory.mktemp("tiny-run-home"), tiny_model_dir)


@pytest.fixture
def tiny_run(trained_home: Path, studio_home: Path) -> RunRecord:
    """That run, copied into this test's own Studio home."""
    return install_run(trained_home, studio_home)
