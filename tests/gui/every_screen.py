"""Every screen a user reaches, built for real and shown in turn: the welcome screen, the five wizard steps
on the sample data and the built-in model, the dashboard of a finished run, the runs library with that run
selected, its playground and comparison, and its export dialog. Shared by the glossary and the screen
reader tests, which check what each screen shows."""

from __future__ import annotations

from collections.abc import Iterator

from PySide6.QtWidgets import QWidget

from studio.app import MainWindow
from studio.engine.runs.registry import RunRecord

SETTLE_MS = 60  # the window explains new words right after a screen changes


def every_screen(window: MainWindow, qtbot, run: RunRecord) -> Iterator[tuple[str, QWidget]]:
    """Yield (name, root widget) for each screen once it is shown and has settled."""
    wizard = window.wizard
    wizard.start()
    qtbot.waitUntil(lambda: wizard.ready, timeout=60_000)
    qtbot.wait(SETTLE_MS)
    yield "welcome", window
    wizard.start_own()
    wizard.page_at(0).select("chatbot")
    qtbot.wait(SETTLE_MS)
    yield "use case", window
    wizard.quick_start()
    dataset = wizard.page_at(1)
    qtbot.waitUntil(lambda: not dataset.runner.busy and wizard.session.report is not None, timeout=300_000)
    qtbot.wait(SETTLE_MS)
    yield "data", window
    wizard.next()
    models = wizard.page_at(2)
    qtbot.waitUntil(lambda: models.selected() is not None, timeout=120_000)
    qtbot.wait(SETTLE_MS)
    yield "base model", window
    wizard.next()
    settings = wizard.page_at(3)
    qtbot.waitUntil(lambda: wizard.session.plan is not None or settings.banner.isVisible(), timeout=120_000)
    assert wizard.session.plan is not None, settings.banner.text()
    qtbot.wait(SETTLE_MS)
    yield "settings", window
    settings.advanced_toggle.setChecked(True)  # every setting, as an expert sees them
    qtbot.wait(SETTLE_MS)
    yield "all settings", window
    wizard.next()
    qtbot.wait(SETTLE_MS)
    yield "review", window

    dashboard = window.ensure_dashboard()
    window.show_section(dashboard)
    with qtbot.waitSignal(dashboard.historyLoaded, timeout=30_000):
        dashboard.open_run(run.run_dir)
    qtbot.wait(SETTLE_MS)
    yield "dashboard", window

    library = window.show_runs()
    qtbot.waitUntil(lambda: run.id in library.rows and not library.loader.busy, timeout=30_000)
    library.select([run.id])
    qtbot.wait(SETTLE_MS)
    yield "library", window
    with qtbot.waitSignal(library.playground_view.loaded, timeout=30_000):  # its files are read in the background
        library.open_playground([run.id])
    qtbot.wait(SETTLE_MS)
    yield "playground", window
    library.show_list()
    with qtbot.waitSignal(library.compare_view.loaded, timeout=30_000):
        library.open_compare([run.id])
    qtbot.wait(SETTLE_MS)
    yield "compare", window
    library.show_list()

    dialog = window.open_export(run.id)
    qtbot.waitUntil(dialog.isVisible)
    qtbot.wait(SETTLE_MS)
    yield "export", dialog
    dialog.close()
