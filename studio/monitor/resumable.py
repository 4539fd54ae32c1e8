"""Runs left paused, interrupted or training in the background, listed after a restart with Resume/Open.

Reads the registry (a small SQLite query, fine on the GUI thread); the registry's reconcile step turns runs
whose worker has died into "interrupted" before they are listed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

if TYPE_CHECKING:  # the registry is read on first refresh, after the window is on screen
    from studio.engine.runs.registry import Registry, RunRecord

LISTED = {
    "paused": "paused: memory was released",
    "interrupted": "interrupted: it stopped unexpectedly, the last checkpoint is safe",
    "running": "still training in the background",
}


class ResumableRunsPanel(QWidget):
    """One row per unfinished run.

    Signals:
        resumeRequested(str): run id to resume (start a new worker from its last checkpoint).
        openRequested(str): run id to watch (reattach to a run still training, or view a paused one).
    """

    resumeRequested = Signal(str)  # noqa: N815 - Qt signal naming
    openRequested = Signal(str)  # noqa: N815

    def __init__(self, registry: Registry | None = None, parent: QWidget | None = None, *, load: bool = True) -> None:
        super().__init__(parent)
        self._registry = registry
        self.records: list[RunRecord] = []
        self.buttons: dict[str, dict[str, QPushButton]] = {}
        self._layout = QVBoxLayout(self)
        self.setVisible(False)
        if load:
            self.refresh()

    def refresh(self) -> None:
        while self._layout.count():
            item = self._layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        from studio.engine.runs.registry import Registry

        registry = self._registry or Registry()
        self.records = [r for r in registry.list_runs() if r.status in LISTED]
        self.buttons = {}
        if not self.records:
            self.setVisible(False)
            return
        self._layout.addWidget(QLabel("<b>Unfinished training runs</b>"))
        for record in self.records:
            self._layout.addWidget(self._row(record))
        self.setVisible(True)

    def _row(self, record: RunRecord) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        started = record.created_at[:16].replace("T", " ")
        label = QLabel(f"{record.name} {record.version} · {LISTED[record.status]} · started {started}")
        label.setWordWrap(True)
        layout.addWidget(label, 1)
        buttons: dict[str, QPushButton] = {}
        if record.status != "running":
            resume = QPushButton("Resume")
            resume.setAccessibleName(f"Resume {record.name}")
            resume.clicked.connect(lambda _=False, run_id=record.id: self.resumeRequested.emit(run_id))
            buttons["resume"] = resume
            layout.addWidget(resume)
        watch = QPushButton("Open" if record.status != "running" else "Watch")
        watch.clicked.connect(lambda _=False, run_id=record.id: self.openRequested.emit(run_id))
        buttons["open"] = watch
        layout.addWidget(watch)
        self.buttons[record.id] = buttons
        return row
