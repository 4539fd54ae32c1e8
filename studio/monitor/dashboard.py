"""The dashboard page: one run watched live (or rebuilt from its record), composed from the monitor widgets.

Three ways in: `start_run(config)` (the wizard's Launch; with an offer and a budget, on a rented GPU),
`attach(run)` (a run still training or paused, e.g. after a restart) and `open_run(run_dir)` (any past run,
rebuilt from its events.jsonl). Events only ever change the plain RunState and MetricBuffers; widgets are
refreshed from those on timers, so a burst of events never turns into a burst of repaints. The main window
calls `handle_close_request()` from its closeEvent: it asks what should happen to a running training and
returns whether the window may close.

A run on a rented GPU has a cloud.json in its folder (written by studio.engine.cloud.cloud_state.write_launch);
its "worker" is then the cloud runner (`python -m studio.engine.cloud.runner RUN_DIR`), which speaks the
worker's protocol, so it is watched, paused and stopped the same way. The page names the rented GPU and
shows its running cost instead of this computer's energy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import psutil
import pyqtgraph as pg
from PySide6.QtCore import QEventLoop, QTimer, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QProgressDialog,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from studio.engine.cloud.cloud_state import CloudLaunch, cloud_file, load_launch, write_launch
from studio.engine.cloud.providers import provider_name
from studio.engine.config import TrainConfig
from studio.engine.control import ControlCommand
from studio.engine.errors import StudioError
from studio.engine.events import Anomaly, Checkpoint, Event, HardestExamples, Heartbeat, Recovery
from studio.engine.frozen import module_command
from studio.engine.planner.calibration import RunTiming
from studio.engine.runs.creation import new_run
from studio.engine.runs.folders import events_file
from studio.engine.runs.registry import Registry
from studio.engine.training.control_channel import send_to_run_dir
from studio.engine.training.supervisor import Supervisor, WorkerOutcome
from studio.gui.error_help import show_error
from studio.gui.help import help_button
from studio.monitor.alerts import AlertsPanel
from studio.monitor.bridge import EventFileReader, RunBridge
from studio.monitor.buffers import MetricBuffers
from studio.monitor.charts import MAX_REDRAWS_PER_S, ChartsPanel
from studio.monitor.controls import ControlsBar
from studio.monitor.energy_panel import EnergyPanel
from studio.monitor.hardest_panel import HardestPanel
from studio.monitor.lifecycle import CloseChoice, ask_close_choice
from studio.monitor.notifications import NotificationsButton, Notifier
from studio.monitor.progress import ProgressPanel
from studio.monitor.quality_panel import auto_check_enabled
from studio.monitor.startup_panel import StartupPanel
from studio.monitor.state import RunState, RunStatus
from studio.monitor.summary import CompletionCard
from studio.monitor.system_stats import SystemSample, SystemSampler

log = logging.getLogger(__name__)

CLOSE_WAIT_S = 180.0  # how long closing waits for a checkpoint before giving up on a clean pause/stop


def close_plots(root: QWidget) -> None:
    """Hand every pyqtgraph menu under `root` to its plot: pyqtgraph creates them without a parent, so
    they would otherwise outlive the page as hidden top-level windows, held by the Python side."""
    for plot in root.findChildren(pg.PlotWidget):
        item = plot.getPlotItem()
        for menu in (item.ctrlMenu, item.getViewBox().menu):
            if menu is not None and menu.parent() is None:
                menu.setParent(plot, menu.windowFlags())


COST_PHASE = "cloud_cost"  # the cloud runner's heartbeat with the rented machine's cost so far


def write_rented_launch(run_dir: Path, offer: object, budget: float | None) -> None:
    """cloud.json for a run that trains on the rented GPU `offer` (an OfferEstimate), capped at `budget`."""
    chosen, price = offer.offer, offer.offer.price  # type: ignore[attr-defined]
    cap = budget if budget is not None else offer.default_budget  # type: ignore[attr-defined]
    try:
        write_launch(run_dir, chosen.provider, chosen.gpu.id, spot=price.spot, cloud=price.cloud,
                     budget_usd=cap, price_per_hour=price.per_hour)
    except ValueError as exc:
        raise StudioError(what="Studio could not record which GPU to rent for this run.", why=str(exc),
                          actions=["Go back to the review step and choose the offer and the budget again."],
                          code="cloud_launch_invalid") from None


def rented_launch(run_dir: Path) -> CloudLaunch | None:
    """The run's launch choice when it trains on a rented GPU (a cloud.json in its folder), else None."""
    if not cloud_file(run_dir).exists():
        return None
    try:
        return load_launch(run_dir)
    except StudioError as exc:
        log.warning("Ignoring an unreadable cloud.json in %s: %s", run_dir, exc.what)
        return None


def rented_text(item: CloudLaunch) -> str:
    """'Rented GPU: RTX 4090 on RunPod (spot, community cloud, $0.20 per hour, budget cap $1.00)'."""
    gpu = str(item.gpu_id).removeprefix("NVIDIA ")
    kind = "spot" if item.spot else "on-demand"
    return (f"Rented GPU: {gpu} on {provider_name(item.provider)} ({kind}, {item.cloud} cloud, "
            f"${item.price_per_hour:.2f} per hour, budget cap ${item.budget_usd:.2f})")


def runner_command(run_dir: Path) -> list[str]:
    """The cloud runner in place of the worker: it rents the machine (or, for a run with a together.json,
    follows its Together AI fine-tuning job) and speaks the worker's protocol."""
    from studio.engine.cloud.together_state import has_together

    module = "studio.engine.cloud.together_runner" if has_together(run_dir) else "studio.engine.cloud.runner"
    return module_command(module, str(run_dir))  # the bundle's executable when frozen


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


class DashboardPage(QWidget):
    """The live training dashboard.

    Signals:
        statusChanged(str): the run's reported status changed (a RunStatus value).
        historyLoaded(): a run's recorded events have all been read and drawn (open_run, attach).
        playgroundRequested(str), compareRequested(str), exportRequested(str): next steps for a run id.
    """

    statusChanged = Signal(str)  # noqa: N815 - Qt signal naming
    historyLoaded = Signal()  # noqa: N815
    _workerEnded = Signal(object, object)  # noqa: N815 - (supervisor, WorkerOutcome), from the waiter thread
    playgroundRequested = Signal(str)  # noqa: N815
    compareRequested = Signal(str)  # noqa: N815
    exportRequested = Signal(str)  # noqa: N815

    def __init__(self, parent: QWidget | None = None, notifier: Notifier | None = None,
                 sampler: SystemSampler | None = None) -> None:
        super().__init__(parent)
        self.ask_close_choice: Callable[[QWidget], CloseChoice] = ask_close_choice
        self.state = RunState()
        self.buffers = MetricBuffers()
        self.run_dir: Path | None = None
        self.supervisor: Supervisor | None = None
        self._crash = ""  # the last worker's crash report, for the exit that follows it
        self._reader: EventFileReader | None = None
        self._waiters: list[threading.Thread] = []
        self._shown_status = RunStatus.IDLE
        self._title = ""
        self._dirty = False
        self._closed = False  # after shutdown() events from a worker left running are ignored
        self._live = False  # this page watched the run train (not just its history): its end is news

        self.bridge = RunBridge(self)
        self.sampler = sampler or SystemSampler(parent=self)
        self.notifier = notifier or Notifier(parent=self)
        self.heading = QLabel("No training run yet")
        self.heading.setStyleSheet("font-size: 14pt; font-weight: bold;")
        self.notifications = NotificationsButton(self.notifier)
        self.subheading = QLabel()
        self.subheading.setStyleSheet("color: #59636e;")
        self.rented_label = QLabel()
        self.rented_label.setAccessibleName("Where the run trains")
        self.rented_label.setStyleSheet("font-weight: bold;")
        self.rented_label.setWordWrap(True)
        self.rented_label.hide()
        self.rented: CloudLaunch | None = None  # the run's launch choice when it trains on a rented GPU
        self.progress = ProgressPanel()
        self.controls = ControlsBar()
        self.alerts = AlertsPanel()
        self.summary = CompletionCard()
        self.summary.setVisible(False)
        self.hardest = HardestPanel()
        self.startup = StartupPanel()
        self.startup.setVisible(False)
        self.energy = EnergyPanel()
        self._timing = RunTiming()  # how fast this run goes here, for the next plan's time estimate
        self.charts = ChartsPanel(self.buffers, show_gpu=self.sampler.has_gpu)

        content = QWidget()
        layout = QVBoxLayout(content)
        header = QHBoxLayout()
        header.addWidget(self.heading, 1)
        header.addWidget(help_button("dashboard", "the training dashboard"))
        header.addWidget(self.notifications)
        layout.addLayout(header)
        layout.addWidget(self.subheading)
        layout.addWidget(self.rented_label)
        top = QHBoxLayout()  # the hardest examples use the room beside the progress ring
        top.addWidget(self.progress, 0)
        top.addWidget(self.hardest, 1)
        layout.addLayout(top)
        layout.addWidget(self.startup)
        layout.addWidget(self.controls)
        layout.addWidget(self.energy)
        layout.addWidget(self.alerts)
        layout.addWidget(self.summary)
        layout.addWidget(self.charts, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setAccessibleName("Training dashboard")
        scroll.setWidget(content)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(scroll)

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setInterval(1000 // MAX_REDRAWS_PER_S)
        self._refresh_timer.timeout.connect(self._refresh_if_dirty)

        self.bridge.events.connect(self._on_events)
        self.bridge.anomaly.connect(self.notifier.anomaly)
        self.bridge.failed.connect(self.notifier.error)
        self.bridge.workerExited.connect(self._on_worker_exit)
        self._workerEnded.connect(self._on_supervisor_exit)
        self.bridge.workerSilent.connect(self._on_silent)
        self.controls.commandRequested.connect(self._on_command)
        self.alerts.commandRequested.connect(self.bridge.send)
        self.sampler.sampled.connect(lambda s: self.buffers.add_system(s.t, dataclasses.asdict(s)))
        self.sampler.sampled.connect(self._on_sample)
        self.summary.playgroundRequested.connect(self.playgroundRequested)
        self.summary.compareRequested.connect(self.compareRequested)
        self.summary.exportRequested.connect(self.exportRequested)

    # ---- ways in ---------------------------------------------------------------------------------------

    def start_run(self, config: TrainConfig, name: str | None = None, *, offer: object = None,
                  budget: float | None = None) -> str:
        """Create the run (folder + registry row, status queued) and start its worker; returns the run id.
        With `offer` (an OfferEstimate from studio.engine.cloud.offers) the run trains on that rented GPU, and
        stops there at `budget` US dollars (the offer's default cap when None)."""
        record = new_run(Registry(), config, name)
        if offer is not None:
            write_rented_launch(record.run_dir, offer, budget)
        self._reset(record.run_dir)
        self.state.run_id, self.state.config = record.id, config.model_dump(mode="json")
        self._launch()
        return record.id

    def open_run(self, run_dir: Path, then: Callable[[], None] | None = None) -> None:
        """Rebuild the dashboard of any run from its events.jsonl (read on a thread, in batches)."""
        self._reset(Path(run_dir))
        self._read_record(follow=False, then=then)

    def attach(self, run: str | Path) -> None:
        """Watch a run again: follow it while its worker lives (started before a restart), else show it."""
        run_dir, pid = self._locate(run)
        if pid is None:
            self.open_run(run_dir)
            return
        self._reset(run_dir)
        self.bridge.set_sender(lambda command: bool(send_to_run_dir(run_dir, command)))
        self._live = True
        self._read_record(follow=True, alive=lambda: psutil.pid_exists(pid))

    def resume_run(self, run: str | Path) -> None:
        """Rebuild a paused or interrupted run's history, then start a new worker that resumes it."""
        run_dir, pid = self._locate(run)
        if pid is not None:
            self.attach(run_dir)  # still training somewhere: nothing to resume, just watch it
            return
        self.open_run(run_dir, then=self._launch)

    def resume(self) -> None:
        """Continue the current run: instant after a pause, a new worker after a release or interruption."""
        if self.state.status is RunStatus.PAUSED:
            self.bridge.send(ControlCommand("resume"))
        elif self.state.status in {RunStatus.RELEASED, RunStatus.INTERRUPTED} and self.run_dir is not None:
            self._launch()

    # ---- ways out --------------------------------------------------------------------------------------

    def handle_close_request(self) -> bool:
        """For the main window's closeEvent: True when it may close. Asks only while a worker is training."""
        if not (self.state.status.alive and self.bridge.can_send):
            self.shutdown()
            return True
        choice = self.ask_close_choice(self)
        if choice is CloseChoice.CANCEL:
            return False
        if choice is not CloseChoice.KEEP:
            self.bridge.send(ControlCommand(choice.value))  # type: ignore[arg-type]
            if not self._wait_for_worker(choice):
                return False
        self.shutdown()
        return True

    def shutdown(self) -> None:
        """Stop watching for good (a worker that is still training keeps going); the charts' menus go with
        the page."""
        self._stop_watching()
        self.summary.quality.shutdown()
        close_plots(self)

    def _stop_watching(self) -> None:
        """Timers, sampler, reader thread: stopped between runs too, when the page is reused."""
        self._closed = True
        self._refresh_timer.stop()
        self.charts.stop()
        self.sampler.stop()
        self.notifier.close()
        if self._reader is not None:
            self._reader.stop()
            self._reader = None
        self.bridge.set_sender(None)
        self.supervisor = None

    def is_watching(self) -> bool:
        """Any timer or thread of this page still running (tests check this is False after shutdown)."""
        return (self._refresh_timer.isActive() or self.charts.is_active() or self.sampler.is_active()
                or (self._reader is not None and self._reader.isRunning())
                or any(t.is_alive() for t in self._waiters) or self.summary.quality.running)

    # ---- internals -------------------------------------------------------------------------------------

    def _reset(self, run_dir: Path) -> None:
        self._stop_watching()
        self._closed = False
        self._live = False
        self.summary.quality.cancel()
        self.run_dir = run_dir
        self.state = RunState(run_id=run_dir.name)
        self.buffers = MetricBuffers(self.buffers.smoothing)
        self.charts.set_buffers(self.buffers)
        self.alerts.clear()
        self.hardest.clear()
        self.startup.reset()
        self.rented = rented_launch(run_dir)
        launch = self.rented
        self.rented_label.setVisible(launch is not None)
        self.rented_label.setText(rented_text(launch) if launch is not None else "")
        self.energy.reset(run_dir, (launch.price_per_hour, launch.budget_usd) if launch is not None else None)
        self._timing = RunTiming()
        self.summary.setVisible(False)
        self._shown_status = RunStatus.IDLE
        record = Registry().get(run_dir.name)
        self._title = f"{record.name} {record.version}" if record is not None else run_dir.name
        self._dirty = True
        self._refresh_timer.start()
        self.charts.start()

    def _launch(self) -> None:
        """Start a worker for the current run folder (a fresh run, or a resume from its last checkpoint)."""
        assert self.run_dir is not None
        bridge = self.bridge
        supervisor = Supervisor(
            self.run_dir,
            on_event=lambda event: bridge.feed_events([event]),
            on_silence=bridge.notify_silent,
            on_bad_line=bridge.reject_line,
            command=runner_command(self.run_dir) if self.rented is not None else None,
        )
        try:
            supervisor.start()
        except OSError as exc:
            self._show_error(StudioError(
                what="Studio could not start the training process.",
                why=str(exc),
                actions=["Check that Studio is installed completely.", "Try again, or restart Studio."],
                code="worker_start_failed",
            ))
            return
        self.supervisor = supervisor
        self._live = True
        bridge.set_sender(supervisor.send)
        self.state.status = RunStatus.STARTING
        self.startup.reset()
        self.state.completed = self.state.stopped = self.state.error = None
        self.state.crash = self._crash = ""
        self._dirty = True
        self.notifier.begin(self.state)
        self.sampler.start()
        self._refresh_timer.start()
        self.charts.start()
        waiter = threading.Thread(target=self._wait_worker, args=(supervisor,), name="worker-exit",
                                  daemon=True)
        self._waiters = [t for t in self._waiters if t.is_alive()] + [waiter]
        waiter.start()
        self._refresh_if_dirty()

    def _wait_worker(self, supervisor: Supervisor) -> None:
        """On a thread: report the worker's exit after all its events (the queued signal keeps the order)."""
        outcome = supervisor.wait()
        with contextlib.suppress(RuntimeError):  # the page is gone; the worker ran on in the background
            self._workerEnded.emit(supervisor, outcome)

    def _on_supervisor_exit(self, supervisor: Supervisor, outcome: WorkerOutcome) -> None:
        """Only the current worker's exit counts: an old one ending after a quick resume is history."""
        if supervisor is self.supervisor:
            crash = outcome.crash_error(supervisor.run_dir.name)
            self._crash = f"{crash.what}\n{crash.why}" if crash is not None else ""
            self.bridge.notify_exit(outcome.exit_code)

    def _read_record(self, follow: bool, alive: Callable[[], bool] | None = None,
                     then: Callable[[], None] | None = None) -> None:
        assert self.run_dir is not None
        reader = EventFileReader(events_file(self.run_dir), self.bridge, follow=follow, alive=alive,
                                 parent=self)
        reader.caughtUp.connect(lambda: self._caught_up(follow, then))
        self._reader = reader
        if follow:
            self.notifier.begin(self.state)
            self.sampler.start()
        reader.start()

    def _caught_up(self, follow: bool, then: Callable[[], None] | None) -> None:
        if not follow:
            if self._reader is not None:
                self._reader.wait()
                self._reader = None
            self.state.mark_exited(-1)  # history that ends mid-run: the worker is gone, so it was interrupted
            self._dirty = True
        self._refresh_if_dirty()
        self.charts.redraw()  # every chart now: the timer draws one small chart per tick
        self.notifier.begin(self.state)
        self.historyLoaded.emit()
        if then is not None:
            then()

    def _locate(self, run: str | Path) -> tuple[Path, int | None]:
        """The run's folder, and the pid of its worker when one is still alive."""
        registry = Registry()
        registry.reconcile()  # workers that died since are marked interrupted first
        folder = Path(run)
        record = registry.get(folder.name) if folder.is_dir() else registry.find(str(run))
        run_dir = folder if folder.is_dir() else record.run_dir  # type: ignore[union-attr]
        alive = record is not None and record.status in {"running", "paused"}
        return run_dir, (record.pid if alive and record is not None else None)

    def _on_events(self, batch: list[Event]) -> None:
        if self._closed:
            return
        if not self._refresh_timer.isActive():
            self._refresh_timer.start()
            self.charts.start()
        for event in batch:
            if isinstance(event, Heartbeat) and event.phase == COST_PHASE:  # money, not a phase of the run
                self.energy.show_rented_cost(_number(event.extra.get("cost_usd")),
                                             _number(event.extra.get("budget_usd")))
                continue
            self.state.apply(event)
            self.buffers.apply(event)
            self.startup.observe(event)
            self._timing.observe(event)
            if isinstance(event, Anomaly):
                self.alerts.add_anomaly(event, ask_mode=self.state.config.get("anomaly_mode") == "ask")
            elif isinstance(event, Recovery):
                self.alerts.add_recovery(event)
            elif isinstance(event, Checkpoint):
                self.controls.settle("checkpoint")
            elif isinstance(event, HardestExamples):
                self.hardest.show_examples(event)
        self._dirty = True

    def _on_worker_exit(self, exit_code: int) -> None:
        self.state.mark_exited(exit_code, self._crash)
        self.bridge.set_sender(None)
        self.supervisor = None
        self.sampler.stop()
        self.energy.save()
        self._record_timing()
        self._dirty = True
        self._refresh_if_dirty()

    def _on_sample(self, sample: SystemSample) -> None:
        """The running energy and cost move with every reading; a starting run's time so far too."""
        self.energy.add_sample(sample)
        if self.state.status is RunStatus.STARTING:
            self._dirty = True

    def _record_timing(self) -> None:
        """Keep how fast this worker trained on this computer, so the next plan's time estimate uses it."""
        if self.rented is None and self.state.status in {RunStatus.COMPLETED, RunStatus.STOPPED, RunStatus.RELEASED}:
            from studio.engine.hardware import probe
            from studio.engine.planner.calibration import default_store

            default_store().record(probe(), self._timing)

    def _on_silent(self, seconds: float) -> None:
        self.state.phase = f"no word from the training process for {seconds:.0f} s"
        self._dirty = True

    def _on_command(self, command: ControlCommand) -> None:
        if command.command == "resume" and self.state.status is not RunStatus.PAUSED:
            self.resume()
        elif not self.bridge.send(command):
            self.controls.set_status(self.state.status)
            self.controls.note.setText("The training process did not receive that; it may have ended.")

    def _refresh_if_dirty(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        state = self.state
        title = self._title or state.run_id
        self.heading.setText(f"Training run {title}" if title else "No training run yet")
        model = Path(state.model).name if "/" in state.model or "\\" in state.model else state.model
        details = [part for part in (model, state.device, state.backend) if part]
        self.subheading.setText(" · ".join(details))
        self.progress.update_from(state)
        self.startup.setVisible(state.status is RunStatus.STARTING
                                or (state.status is RunStatus.IDLE and self.startup.stage is not None))
        self.startup.refresh()
        self.energy.setVisible(state.status.alive)  # a finished run's totals are on the completion card
        self.charts.set_total_steps(state.total_steps)
        self.controls.set_status(state.status)
        self.alerts.set_interactive(state.status.alive and self.bridge.can_send)
        self.notifier.observe(state)
        if state.status is not self._shown_status:
            self._shown_status = state.status
            if state.status.finished:
                self.summary.show_for(state, self.energy.total(), self.energy.settings, self.run_dir)
                self.summary.setVisible(True)
                self._check_quality()
            self.statusChanged.emit(state.status.value)

    def _check_quality(self) -> None:
        """A run that just completed here gets its quality check in the background (unless switched off,
        or there is nothing it could measure); a run opened from its history shows its saved verdict."""
        state, panel = self.state, self.summary.quality
        if not (self._live and state.status is RunStatus.COMPLETED) or panel.report is not None:
            return
        if state.config.get("objective", "sft") != "sft":
            panel.skip("The quality check compares answers to held-out examples; this run learned from "
                       "preference pairs, so try it in the playground instead.")
        elif not state.config.get("eval_fraction", 0.1):
            panel.skip("No held-out examples were kept aside for this run, so there is nothing to check the "
                       "tuned model on. Train with a held-out share to get a verdict.")
        elif auto_check_enabled():
            panel.start()

    def _wait_for_worker(self, choice: CloseChoice) -> bool:
        """Keep the GUI responsive while the worker checkpoints and exits; False if it did not in time."""
        dialog = QProgressDialog("Saving a checkpoint so nothing is lost…", "", 0, 0, self)
        dialog.setCancelButton(None)
        dialog.setWindowTitle("Pausing" if choice is CloseChoice.PAUSE_RELEASE else "Stopping")
        dialog.show()
        loop = QEventLoop()
        self.bridge.workerExited.connect(loop.quit)
        QTimer.singleShot(int(CLOSE_WAIT_S * 1000), loop.quit)
        if self.state.status.alive and self.bridge.can_send:
            loop.exec()
        self.bridge.workerExited.disconnect(loop.quit)
        dialog.close()
        if self.state.status.alive:
            self._show_error(StudioError(
                what="Training is still running: the training process did not finish saving in time.",
                why="Saving a checkpoint of a large model can take longer than Studio waited.",
                actions=["Close the window again to choose what to do.",
                         "Or keep it open and pause or stop the run from the dashboard."],
                code="worker_slow_to_save",
            ))
            return False
        return True

    def _show_error(self, error: StudioError) -> None:
        show_error(self, "Training", error)
