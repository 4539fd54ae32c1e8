"""The completion card: how the run went in a few numbers, and where to go next.

The next steps are signals carrying the run id, so the main window routes them to the playground, the
comparison view or the export dialog without this card knowing those exist.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from studio.engine.energy import EnergySettings
from studio.engine.power_meter import RunEnergy
from studio.monitor.energy_panel import footprint_texts
from studio.monitor.progress import human_duration
from studio.monitor.quality_panel import QualityPanel
from studio.monitor.state import RunState, RunStatus


def human_bytes(value: float | None) -> str:
    if value is None:
        return "unknown"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit in {"B", "KB", "MB"} else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def _loss(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "not measured"


def verdict(state: RunState) -> str:
    """Can the user trust the result? Said plainly, from what happened during the run."""
    anomalies, recoveries = len(state.anomalies), len(state.recoveries)
    if not anomalies:
        return "Training went smoothly: no problems were detected."
    critical = sum(1 for a in state.anomalies if a.severity == "critical")
    handled = f"Studio took {recoveries} corrective action{'s' if recoveries != 1 else ''}" if recoveries \
        else "no corrective action was needed"
    caution = " Check the model's answers in the playground before relying on it." if critical else ""
    return f"{anomalies} issue{'s' if anomalies != 1 else ''} noticed during training; {handled}.{caution}"


class CompletionCard(QFrame):
    """Shown when a run has finished (completed, stopped or failed); its quality panel says whether the tuned
    model beats its base (the dashboard starts that check when a run completes).

    Signals:
        playgroundRequested(str), compareRequested(str), exportRequested(str): the run id.
    """

    playgroundRequested = Signal(str)  # noqa: N815 - Qt signal naming
    compareRequested = Signal(str)  # noqa: N815
    exportRequested = Signal(str)  # noqa: N815

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._run_id = ""
        self.setObjectName("completionCard")
        self.setStyleSheet("#completionCard { border: 1px solid #8c959f; border-radius: 8px; }")
        layout = QVBoxLayout(self)
        self.title = QLabel()
        self.title.setStyleSheet("font-size: 15pt; font-weight: bold;")
        layout.addWidget(self.title)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.facts: dict[str, QLabel] = {}
        grid = QGridLayout()
        for index, (key, text) in enumerate((
            ("final_eval", "Final held-out loss"), ("best_eval", "Best held-out loss"),
            ("time", "Training time"), ("memory", "Peak memory"), ("anomalies", "Issues noticed"),
            ("recoveries", "Corrective actions"), ("energy", "Energy used"), ("cost", "Electricity cost"),
            ("co2", "CO2 emitted"),
        )):
            name = QLabel(text)
            name.setStyleSheet("color: #59636e;")
            value = QLabel()
            value.setStyleSheet("font-weight: bold; font-size: 12pt;")
            value.setWordWrap(True)
            value.setAccessibleName(text)
            self.facts[key] = value
            grid.addWidget(name, (index // 3) * 2, index % 3)
            grid.addWidget(value, (index // 3) * 2 + 1, index % 3)
        layout.addLayout(grid)
        self.verdict = QLabel()
        self.verdict.setWordWrap(True)
        layout.addWidget(self.verdict)
        self.quality = QualityPanel()
        layout.addWidget(self.quality)
        buttons = QHBoxLayout()
        layout.addWidget(QLabel("<b>Next steps</b>"))
        self.buttons: dict[str, QPushButton] = {}
        for key, text, signal in (
            ("playground", "Try it in the playground", self.playgroundRequested),
            ("compare", "Compare with other runs", self.compareRequested),
            ("export", "Export (Ollama, GGUF, …)", self.exportRequested),
        ):
            button = QPushButton(text)
            button.clicked.connect(lambda _=False, s=signal: s.emit(self._run_id))
            self.buttons[key] = button
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)

    def show_for(self, state: RunState, energy: RunEnergy | None = None,
                 settings: EnergySettings | None = None, run_dir: Path | None = None) -> None:
        """`energy`: what the dashboard measured (or estimated) while the run trained, at `settings`;
        `run_dir`: where the run's quality report is (or will be) saved."""
        self._run_id = state.run_id
        metrics = state.completed.metrics if state.completed else {}
        self.title.setText({
            RunStatus.COMPLETED: "Training finished",
            RunStatus.STOPPED: "Training stopped",
            RunStatus.FAILED: "Training failed",
        }.get(state.status, "Training ended"))
        if state.completed is not None:
            self.summary.setText(state.completed.summary)
        elif state.error is not None:
            self.summary.setText(f"{state.error.message} {state.error.hint}".strip())
        else:
            self.summary.setText(f"Stopped at step {state.step:,} of {state.total_steps:,}; "
                                 "the last checkpoint keeps what was learned.")
        self.facts["final_eval"].setText(_loss(metrics.get("eval_loss", state.eval_loss)))
        best = metrics.get("best_eval_loss", state.best_eval_loss)
        known_step = state.best_eval_step is not None and best is not None
        at = f" (step {state.best_eval_step:,})" if known_step else ""
        self.facts["best_eval"].setText(_loss(best) + at)
        self.facts["time"].setText(human_duration(metrics.get("wall_s", state.elapsed_s)))
        memory = f"RAM {human_bytes(state.peak_ram_bytes)}"
        if state.peak_gpu_bytes:
            memory += f", GPU {human_bytes(state.peak_gpu_bytes)}"
        self.facts["memory"].setText(memory)
        self.facts["anomalies"].setText(str(len(state.anomalies)))
        self.facts["recoveries"].setText(str(len(state.recoveries)))
        figures = footprint_texts(energy, settings) if energy is not None and settings is not None else {}
        for key, name in (("energy", "Energy"), ("cost", "Cost"), ("co2", "CO2")):
            self.facts[key].setText(figures.get(name, "not measured"))
            self.facts[key].setToolTip("" if name in figures else
                                       "Studio measures energy while its dashboard watches a run; this one "
                                       "trained without it (from the command line or the queue).")
        self.verdict.setText(verdict(state))
        usable = state.status is RunStatus.COMPLETED or bool(state.checkpoints)
        for button in self.buttons.values():
            button.setEnabled(usable)
        self.quality.setVisible(usable)
        self.quality.set_run(state.run_id if usable else "", run_dir)
