"""What a starting run is doing, step by step, before its first training step says how fast it goes.

The worker reports its phases in heartbeats (loading the model, preparing the data, setting up the
trainer) and `started` once training begins; the first step then runs before any progress arrives, which
on a CPU can take a minute. This panel turns those into "step 2 of 4" with a bar and the time so far.
"""

from __future__ import annotations

import time

from PySide6.QtWidgets import QLabel, QProgressBar, QVBoxLayout, QWidget

from studio.engine.events import Event, Heartbeat, Started
from studio.monitor.progress import human_duration

STAGES = (
    ("loading_model", "Loading the model"),
    ("preparing_data", "Preparing your data"),
    ("building_trainer", "Setting up the training"),
    ("first_step", "Running the first step, to measure the speed"),
)
_INDEX = {phase: index for index, (phase, _text) in enumerate(STAGES)}
STEPS = 100  # bar units per stage, for a stage that reports its own fraction


class StartupPanel(QWidget):
    """Shown while the run is starting; `observe` every event, `refresh` on the dashboard's timer."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.stage: int | None = None
        self._fraction = 0.0
        self._since = time.monotonic()
        self.text = QLabel()
        self.text.setWordWrap(True)
        self.bar = QProgressBar()
        self.bar.setRange(0, STEPS * len(STAGES))
        self.bar.setTextVisible(False)
        self.bar.setAccessibleName("Getting the training ready")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.text)
        layout.addWidget(self.bar)
        self.reset()

    def reset(self) -> None:
        self.stage, self._fraction, self._since = None, 0.0, time.monotonic()
        self.refresh()

    def observe(self, event: Event) -> None:
        if isinstance(event, Started):
            self._enter(_INDEX["first_step"], 0.0)
        elif isinstance(event, Heartbeat) and event.phase in _INDEX:
            self._enter(_INDEX[event.phase], event.fraction or 0.0)

    def _enter(self, stage: int, fraction: float) -> None:
        if stage != self.stage:
            self.stage, self._since = stage, time.monotonic()
        self._fraction = min(max(fraction, 0.0), 1.0)

    def refresh(self) -> None:
        if self.stage is None:
            self.text.setText("Starting the training process…")
            self.bar.setValue(0)
            return
        so_far = human_duration(time.monotonic() - self._since)
        self.text.setText(f"Step {self.stage + 1} of {len(STAGES)}: {STAGES[self.stage][1]} ({so_far} so far)")
        self.bar.setValue(round(STEPS * (self.stage + self._fraction)))
