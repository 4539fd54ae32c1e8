"""How far the run is: a progress ring with the percentage, and step, epoch, elapsed time and ETA in words.

The ETA is shown with its uncertainty ("about 12 min, 10 to 15 min") because an exact-looking number that
turns out wrong erodes trust faster than an honest range.
"""

from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QFormLayout, QHBoxLayout, QLabel, QSizePolicy, QWidget

from studio.monitor.state import RunState, RunStatus

RING_COLORS = {
    RunStatus.RUNNING: QColor(31, 111, 235), RunStatus.STARTING: QColor(31, 111, 235),
    RunStatus.PAUSED: QColor(191, 135, 0), RunStatus.RELEASED: QColor(191, 135, 0),
    RunStatus.COMPLETED: QColor(26, 127, 55), RunStatus.STOPPED: QColor(110, 119, 129),
    RunStatus.FAILED: QColor(207, 34, 46), RunStatus.INTERRUPTED: QColor(207, 34, 46),
}


def human_duration(seconds: float | None) -> str:
    """'45 s', '12 min', '1 h 05 min': precise enough to plan around, never false precision."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "unknown"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min {seconds % 60:02d} s" if minutes < 10 else f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def eta_text(state: RunState) -> str:
    if state.status is RunStatus.COMPLETED:
        return "done"
    if not state.status.alive or state.eta_s is None:
        return "—" if not state.status.alive else "estimating…"
    text = f"about {human_duration(state.eta_s)}"
    if state.eta_interval_s is not None:
        low, high = state.eta_interval_s
        text += f" ({human_duration(low)} to {human_duration(high)})"
    return text


class ProgressRing(QWidget):
    """A circular progress indicator with the percentage in the middle."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._fraction = 0.0
        self._color = RING_COLORS[RunStatus.RUNNING]
        self.setMinimumSize(96, 96)
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.setAccessibleName("Training progress")

    @property
    def fraction(self) -> float:
        return self._fraction

    def set_progress(self, fraction: float, color: QColor) -> None:
        fraction = min(max(fraction, 0.0), 1.0)
        if fraction != self._fraction or color != self._color:
            self._fraction, self._color = fraction, color
            self.setAccessibleDescription(f"{fraction:.0%} done")
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        side = min(self.width(), self.height()) - 12
        rect = QRectF((self.width() - side) / 2, (self.height() - side) / 2, side, side)
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        track = QPen(self.palette().mid().color(), 9)
        painter.setPen(track)
        painter.drawEllipse(rect)
        arc = QPen(self._color, 9)
        arc.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(arc)
        painter.drawArc(rect, 90 * 16, -round(self._fraction * 360 * 16))
        painter.setPen(self.palette().windowText().color())
        font = painter.font()
        font.setPointSizeF(font.pointSizeF() * 1.4)
        font.setBold(True)
        painter.setFont(font)
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, f"{self._fraction:.0%}")
        painter.end()


class ProgressPanel(QWidget):
    """The ring plus the facts around it, updated from a RunState."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ring = ProgressRing()
        self.ring.setFixedSize(110, 110)
        self.status = QLabel()
        self.status.setStyleSheet("font-weight: bold; font-size: 13pt;")
        self.step = QLabel()
        self.epoch = QLabel()
        self.elapsed = QLabel()
        self.eta = QLabel()
        self.crash = QLabel()  # a vanished worker's last words, so the user sees why, not only "interrupted"
        self.crash.setWordWrap(True)
        self.crash.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.crash.setObjectName("crashReport")
        facts = QFormLayout()
        facts.addRow(self.status)
        facts.addRow("Step", self.step)
        facts.addRow("Epoch", self.epoch)
        facts.addRow("Elapsed", self.elapsed)
        facts.addRow("Time left", self.eta)
        facts.addRow(self.crash)
        layout = QHBoxLayout(self)
        layout.addWidget(self.ring)
        layout.addLayout(facts)
        layout.addStretch(1)
        self.update_from(RunState())

    def update_from(self, state: RunState) -> None:
        self.ring.set_progress(state.fraction, RING_COLORS.get(state.status, RING_COLORS[RunStatus.RUNNING]))
        self.status.setText(status_text(state))
        of_total = f" of {state.total_steps:,}" if state.total_steps else ""
        self.step.setText(f"{state.step:,}{of_total}")
        total_epochs = state.config.get("num_epochs")
        self.epoch.setText(f"{state.epoch:.2f} of {total_epochs:g}" if total_epochs and not
                           state.config.get("max_steps") else f"{state.epoch:.2f}")
        self.elapsed.setText(human_duration(state.elapsed_s))
        self.eta.setText(eta_text(state))
        self.crash.setText(state.crash)
        self.crash.setVisible(bool(state.crash) and state.status is RunStatus.INTERRUPTED)


def status_text(state: RunState) -> str:
    phase = f": {state.phase}" if state.phase else ""
    return {
        RunStatus.IDLE: "No training yet",
        RunStatus.STARTING: f"Starting{phase or '…'}",
        RunStatus.RUNNING: f"Training{phase}",
        RunStatus.PAUSED: "Paused (model kept in memory)",
        RunStatus.RELEASED: "Paused (memory released)",
        RunStatus.STOPPED: "Stopped",
        RunStatus.COMPLETED: "Finished",
        RunStatus.FAILED: "Failed",
        RunStatus.INTERRUPTED: "Interrupted: can be resumed",
    }[state.status]
