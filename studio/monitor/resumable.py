"""Runs left paused, interrupted or training in the background, listed after a restart with Resume/Open.

Reads the registry (a small SQLite query, fine on the GUI thread); the registry's reconcile step turns runs
whose worker has died into "interrupted" before they are listed.

A run on a rented GPU (a cloud.json in its folder) says so, because its machine bills by the hour. Its cloud
runner lives in a session of its own, so when Studio is killed the runner goes on training and is listed
"still training in the background" (Watch follows it again). When the runner died too (the whole login
session was ended, or the computer restarted) while it still held a machine, the run is listed interrupted,
with two ways out: Reattach (start the cloud runner again on the folder: it finds the machine and reads on)
and Terminate the machine (studio.engine.cloud.release.release_machine, on the background worker).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from studio.engine.errors import StudioError
from studio.gui.tasks import TaskRunner

if TYPE_CHECKING:  # the registry is read on first refresh, after the window is on screen
    from studio.engine.cloud.cloud_state import CloudLaunch
    from studio.engine.runs.registry import Registry, RunRecord
    from studio.gui.tasks import TaskState

LISTED = {
    "paused": "paused: memory was released",
    "interrupted": "interrupted: it stopped unexpectedly, the last checkpoint is safe",
    "running": "still training in the background",
}
TERMINATE = "Terminate the machine"


@dataclass(frozen=True)
class Released:
    """What "Terminate the machine" did: the run, and what it cost in all (None: it had no machine left)."""

    run_id: str
    title: str
    spent_usd: float | None


def rented_machine(run_dir: Path) -> CloudLaunch | None:
    """The run's cloud.json when it trains on a rented GPU, else None (an unreadable one counts as none)."""
    from studio.engine.cloud.cloud_state import cloud_file, load_launch

    if not cloud_file(run_dir).exists():
        return None
    try:
        return load_launch(run_dir)
    except StudioError:
        return None


def holds_machine(launch: CloudLaunch) -> bool:
    """The run may have a rented machine: one it saved, or one being rented when its runner was killed."""
    return launch.pod_id is not None or launch.state == "renting"


def rented_status(status: str, launch: CloudLaunch, now: float | None = None) -> str:
    """The row's words for a rented run: which GPU, where, and whether its machine is (or may be) billing."""
    from studio.engine.cloud.providers import provider_name

    gpu = f"{str(launch.gpu_id).removeprefix('NVIDIA ')} on {provider_name(launch.provider)}"
    billing = (f"${launch.price_per_hour:.2f} per hour, about ${launch.cost_so_far(now or time.time()):.2f} "
               f"spent of the ${launch.budget_usd:.2f} budget")
    if status == "running":
        held = f", billing {billing}" if holds_machine(launch) else ""
        return f"still training in the background on a rented GPU: {gpu}{held}"
    if status == "paused":
        if holds_machine(launch):
            return f"paused on a rented GPU: {gpu}, which is still billing ({billing})"
        return f"paused: the rented GPU ({gpu}) was given back, the checkpoints are here"
    if holds_machine(launch):
        return (f"interrupted: Studio lost hold of its rented GPU ({gpu}), which may still be billing "
                f"({billing}); the checkpoints copied back are safe")
    return f"interrupted on a rented GPU ({gpu}): the checkpoints copied back are safe, Resume rents a new one"


def release(run_dir: Path, state: TaskState) -> float | None:
    """On the background worker: terminate the machine no runner holds, and record the run as stopped (as
    `studio cloud stop` does), so that it is listed with its checkpoints and Resume trains it on."""
    from studio.engine.cloud.release import release_machine
    from studio.engine.runs.registry import Registry

    registry = Registry()
    registry.reconcile()
    record = registry.get(run_dir.name)
    if record is not None and record.status in {"running", "paused"} and record.pid is not None:
        raise StudioError(what="This run's rented machine is held again: Studio is training it.",
                          why="It was reattached since the list was shown, so terminating it from here could cut "
                              "off a checkpoint on its way back.",
                          actions=["Open the run (Watch) and press Stop: the checkpoint is copied back, then the "
                                   "machine is terminated.", "Or wait for the run to finish."],
                          code="cloud_runner_alive")
    state.report("Terminating the rented machine…", 0.1)
    spent = release_machine(run_dir)
    if record is not None and record.status in {"running", "paused", "queued", "interrupted"}:
        registry.set_status(record.id, "stopped")
    state.report("The machine is terminated.", 1.0)
    return spent


class ResumableRunsPanel(QWidget):
    """One row per unfinished run.

    Signals:
        resumeRequested(str): run id to resume (start a new worker from its last checkpoint; for a rented
            run, the cloud runner, which reattaches to its machine when it is still there).
        openRequested(str): run id to watch (reattach to a run still training, or view a paused one).
        released(object): a Released, once "Terminate the machine" has terminated a run's machine.
    """

    resumeRequested = Signal(str)  # noqa: N815 - Qt signal naming
    openRequested = Signal(str)  # noqa: N815
    released = Signal(object)

    def __init__(self, registry: Registry | None = None, parent: QWidget | None = None, *, load: bool = True) -> None:
        super().__init__(parent)
        self._registry = registry
        self.records: list[RunRecord] = []
        self.buttons: dict[str, dict[str, QPushButton]] = {}
        self.rented: dict[str, CloudLaunch] = {}
        self.tasks = TaskRunner(self)  # "Terminate the machine", on the background worker
        self.tasks.statusChanged.connect(self._show_notice)
        self.tasks.finished.connect(self._on_released)
        self.tasks.failed.connect(self._on_release_failed)
        self.tasks.cancelled.connect(self._on_release_cancelled)
        self._releasing: str | None = None  # the run whose machine is being terminated
        self.notice = QLabel(self)  # what the last "Terminate the machine" did, kept across refreshes
        self.notice.setAccessibleName("What happened to the rented machine")
        self.notice.setWordWrap(True)
        self.notice.hide()
        self._layout = QVBoxLayout(self)
        self.setVisible(False)
        if load:
            self.refresh()

    def refresh(self) -> None:
        while self._layout.count():
            item = self._layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None and widget is not self.notice:
                widget.deleteLater()
        from studio.engine.runs.registry import Registry

        registry = self._registry or Registry()
        self.records = [r for r in registry.list_runs() if r.status in LISTED]
        self.buttons = {}
        self.rented = {}
        for record in self.records:
            launch = rented_machine(record.run_dir)
            if launch is not None:
                self.rented[record.id] = launch
        if not self.records and self.notice.isHidden():
            self.setVisible(False)
            return
        self._layout.addWidget(self.notice)
        if self.records:
            self._layout.addWidget(QLabel("<b>Unfinished training runs</b>"))
        for record in self.records:
            self._layout.addWidget(self._row(record))
        self._explain()
        self.setVisible(True)

    def _row(self, record: RunRecord) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        started = record.created_at[:16].replace("T", " ")
        launch = self.rented.get(record.id)
        status = rented_status(record.status, launch) if launch is not None else LISTED[record.status]
        label = QLabel(f"{record.name} {record.version} · {status} · started {started}")
        label.setWordWrap(True)
        layout.addWidget(label, 1)
        buttons: dict[str, QPushButton] = {}
        lost_machine = launch is not None and holds_machine(launch) and record.status == "interrupted"
        if lost_machine:
            reattach = QPushButton("Reattach")
            reattach.setAccessibleName(f"Reattach {record.name} to its rented machine")
            reattach.setToolTip("Start Studio's cloud runner again: it finds the machine, reads on from where it "
                                "left off and terminates the machine at the end")
            reattach.clicked.connect(lambda _=False, run_id=record.id: self.resumeRequested.emit(run_id))
            buttons["reattach"] = reattach
            layout.addWidget(reattach)
            terminate = QPushButton(TERMINATE)
            terminate.setAccessibleName(f"Terminate the rented machine of {record.name}")
            terminate.setToolTip("Switch the rented machine off now, so that it no longer bills; the checkpoints "
                                 "copied back stay here, and Resume trains on from them later")
            terminate.clicked.connect(lambda _=False, r=record: self.terminate(r))
            terminate.setEnabled(self._releasing is None)
            buttons["terminate"] = terminate
            layout.addWidget(terminate)
        elif record.status != "running":
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

    # ---- terminating a machine no runner holds -----------------------------------------------------

    @property
    def releasing(self) -> bool:
        """A "Terminate the machine" is on its way (tests wait on this)."""
        return self._releasing is not None

    def terminate(self, record: RunRecord) -> None:
        """Terminate the rented machine of a run whose runner is gone, on the background worker."""
        self._releasing = record.id
        for buttons in self.buttons.values():
            if "terminate" in buttons:
                buttons["terminate"].setEnabled(False)
        self.buttons[record.id]["reattach"].setEnabled(False)
        title = f"{record.name} {record.version}"
        self._show_notice(f"{title}: terminating the rented machine…")
        run_dir, run_id = record.run_dir, record.id
        self.tasks.start(lambda state: Released(run_id, title, release(run_dir, state)),
                          "terminating the rented machine")

    def _show_notice(self, text: str) -> None:
        if self._releasing is not None and not text.startswith(self._title(self._releasing)):
            text = f"{self._title(self._releasing)}: {text}"
        self.notice.setText(text)
        self.notice.show()
        self._explain()
        self.setVisible(True)

    def _title(self, run_id: str) -> str:
        record = next((r for r in self.records if r.id == run_id), None)
        return f"{record.name} {record.version}" if record is not None else run_id

    def _on_released(self, result: Released) -> None:
        self._releasing = None
        if result.spent_usd is None:
            text = (f"{result.title}: This run had no rented machine left, so nothing bills. The checkpoints "
                    "copied back are kept; the run is stopped.")
        else:
            text = (f"{result.title}: The machine is terminated (${result.spent_usd:.2f} spent); the checkpoints "
                    "copied back are kept. The run is stopped: Resume, in the runs below, trains it on from them "
                    "on a new machine.")
        self.notice.setText(text)
        self.notice.show()
        self.refresh()
        self.released.emit(result)

    def _on_release_failed(self, error: object) -> None:
        from studio.gui.error_help import show_error

        run_id, self._releasing = self._releasing, None
        title = self._title(run_id) if run_id else "The run"
        self.notice.setText(f"{title}: The rented machine could not be terminated, so it may still be billing. "
                            "Try again, or terminate it in the provider's console.")
        self.notice.show()
        self.refresh()
        failure = error if isinstance(error, StudioError) else StudioError(
            what="Studio could not terminate the rented machine.", why=str(error),
            actions=["Try again in a minute.", "Terminate it in the provider's console."],
            code="cloud_terminate_failed")
        show_error(self, "The machine could not be terminated", failure)

    def _on_release_cancelled(self) -> None:
        self._releasing = None
        self.refresh()

    def shutdown(self) -> None:
        """Wait for a termination on its way (the main window calls this when it closes)."""
        self.tasks.shutdown()

    def _explain(self) -> None:
        """Glossary tooltips on the technical words of the rows (GPU, checkpoint, budget)."""
        from studio.gui.glossary import explain_terms

        explain_terms(self)
