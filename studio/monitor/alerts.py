"""Anomaly banners: what went wrong in plain words, the numbers behind it, and one-click answers.

In "ask" mode the worker waits for the user's choice: the anomaly event's `actions` are keys of
studio.engine.anomalies.ACTION_LABELS (the only answers the worker accepts) and each button sends
ControlCommand("anomaly_action", {"action": KEY, "anomaly": ..., "step": ...}). In automatic mode `actions`
are what Studio did; the banner says that Studio is handling it, and the matching `recovery` event fills in
what was done and why.
"""

from __future__ import annotations

import numbers

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from studio.engine.anomalies import ACTION_LABELS
from studio.engine.control import ControlCommand
from studio.engine.events import Anomaly, Recovery

ANOMALY_TITLES = {
    "nan": "The loss became invalid (NaN)",
    "loss_spike": "Sudden jump in the loss",
    "divergence": "Training is getting worse",
    "grad_explosion": "Gradients exploded",
    "overfitting": "The model is memorising instead of learning",
    "plateau": "Training stopped improving",
    "memory_pressure": "Memory is almost full",
    "throughput_collapse": "Training slowed down sharply",
    "out_of_memory": "Out of memory",
    "margin_collapse": "The model is losing the preference it learned",
    "accuracy_at_chance": "The model is not learning which answer is better",
    "kl_drift": "The model is drifting far from where it started",
}
SEVERITY_STYLE = {
    "info": ("#ddf4ff", "#0969da"),
    "warning": ("#fff8c5", "#9a6700"),
    "critical": ("#ffebe9", "#cf222e"),
    "recovery": ("#dafbe1", "#1a7f37"),
}


def humanize(name: str) -> str:
    return name.replace("_", " ").strip().capitalize()


def action_label(action: str, offered: dict[str, str] | None = None) -> str:
    """The button text: the worker's own label for its offer, else the anomaly package's."""
    return (offered or {}).get(action) or ACTION_LABELS.get(action, humanize(action))


def asks_user(anomaly: Anomaly, ask_mode: bool) -> bool:
    """The worker says in each anomaly event which mode it runs in; older records fall back to the config."""
    mode = anomaly.extra.get("mode")
    return mode == "ask" if isinstance(mode, str) else ask_mode


def evidence_text(evidence: dict[str, object]) -> str:
    """'loss 8.31 · baseline 2.1 · step 120': the numbers a sceptical user wants to see."""
    parts = []
    for key, value in evidence.items():
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            value = f"{value:.3g}" if isinstance(value, float) else f"{value:,}"
        elif isinstance(value, list | tuple):
            value = ", ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in value[:6])
        parts.append(f"{key.replace('_', ' ')} {value}")
    return " · ".join(parts)


class AlertBanner(QFrame):
    """One anomaly (or one automatic recovery) shown as a coloured banner.

    Signals:
        actionChosen(str): the user clicked one of the offered actions.
    """

    actionChosen = Signal(str)  # noqa: N815 - Qt signal naming

    def __init__(self, anomaly: Anomaly | None, interactive: bool, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.anomaly = anomaly
        self.buttons: dict[str, QPushButton] = {}
        self.chosen: str | None = None
        self.resolved = False  # a recovery event told what was done
        self.labels: dict[str, str] = {}
        severity = anomaly.severity if anomaly is not None else "recovery"
        background, accent = SEVERITY_STYLE.get(severity, SEVERITY_STYLE["warning"])
        self.setObjectName("alertBanner")
        self.setStyleSheet(
            f"#alertBanner {{ background: {background}; border-left: 5px solid {accent};"
            " border-radius: 4px }"
            f" #alertBanner QLabel {{ color: #1f2328; }}"
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        header = QHBoxLayout()
        self.title = QLabel()
        self.title.setStyleSheet(f"font-weight: bold; color: {accent};")
        header.addWidget(self.title, 1)
        close = QPushButton("Dismiss")
        close.setFlat(True)
        close.setAccessibleName("Dismiss this alert")
        close.clicked.connect(self.hide)
        header.addWidget(close)
        layout.addLayout(header)
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setVisible(anomaly is not None)
        layout.addWidget(self.message)
        self.evidence = QLabel()
        self.evidence.setWordWrap(True)
        self.evidence.setStyleSheet("color: #59636e; font-size: 9pt;")
        self.evidence.setVisible(False)
        layout.addWidget(self.evidence)
        self.outcome = QLabel()
        self.outcome.setWordWrap(True)
        self.outcome.setVisible(False)
        layout.addWidget(self.outcome)
        row = QHBoxLayout()
        if anomaly is not None:
            step = f" at step {anomaly.step:,}" if anomaly.step else ""
            self.title.setText(ANOMALY_TITLES.get(anomaly.anomaly, humanize(anomaly.anomaly)) + step)
            self.message.setText(anomaly.message)
            self.evidence.setText(evidence_text(anomaly.evidence))
            self.evidence.setVisible(bool(anomaly.evidence))
            offered = anomaly.extra.get("offer_labels")
            self.labels = dict(offered) if isinstance(offered, dict) else {}
            if interactive:
                for action in (key for key in anomaly.actions if key in ACTION_LABELS):
                    button = QPushButton(action_label(action, self.labels))
                    button.clicked.connect(lambda _=False, a=action: self._choose(a))
                    self.buttons[action] = button
                    row.addWidget(button)
            elif anomaly.actions:
                self._set_outcome("Studio is handling this automatically.")
        row.addStretch(1)
        layout.addLayout(row)

    def _choose(self, action: str) -> None:
        self.chosen = action
        for button in self.buttons.values():
            button.setEnabled(False)
        self._set_outcome(f"You chose: {action_label(action, self.labels)}. Waiting for training to confirm…")
        self.actionChosen.emit(action)

    def show_recovery(self, recovery: Recovery) -> None:
        """What the worker did about this anomaly, and why."""
        self.resolved = True
        if self.anomaly is None:
            self.title.setText(f"Studio acted: {humanize(recovery.action)}"
                               + (f" at step {recovery.step:,}" if recovery.step else ""))
        changes = " · ".join(
            f"{key.replace('_', ' ')} {before_after(recovery.before.get(key))} → {before_after(value)}"
            for key, value in recovery.after.items()
        )
        details = f"<br>{changes}" if changes else ""
        self._set_outcome(f"<b>What Studio did:</b> {recovery.message}{details}")
        for button in self.buttons.values():
            button.setEnabled(False)

    def set_interactive(self, interactive: bool) -> None:
        for button in self.buttons.values():
            button.setEnabled(interactive and self.chosen is None and not self.resolved)

    def _set_outcome(self, text: str) -> None:
        self.outcome.setText(text)
        self.outcome.setVisible(True)


def before_after(value: object) -> str:
    return f"{value:.3g}" if isinstance(value, float) else ("—" if value is None else str(value))


class AlertsPanel(QWidget):
    """The stack of banners, newest first; old ones beyond `max_visible` are dropped from view.

    Signals:
        commandRequested(ControlCommand): an anomaly action the user chose; the dashboard sends it.
    """

    commandRequested = Signal(object)  # noqa: N815 - Qt signal naming

    def __init__(self, max_visible: int = 4, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._max_visible = max_visible
        self.banners: list[AlertBanner] = []
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._interactive = True
        self.setVisible(False)

    def clear(self) -> None:
        for banner in self.banners:
            banner.deleteLater()
        self.banners.clear()
        self.setVisible(False)

    def add_anomaly(self, anomaly: Anomaly, ask_mode: bool) -> AlertBanner:
        banner = AlertBanner(anomaly, interactive=asks_user(anomaly, ask_mode) and self._interactive)
        banner.actionChosen.connect(lambda action, a=anomaly: self.commandRequested.emit(
            ControlCommand("anomaly_action", {"action": action, "anomaly": a.anomaly, "step": a.step})))
        return self._push(banner)

    def add_recovery(self, recovery: Recovery) -> AlertBanner:
        """Attach to the latest anomaly still waiting for an outcome, or show a banner of its own."""
        for banner in reversed(self.banners):
            if banner.anomaly is not None and not banner.resolved:
                banner.show_recovery(recovery)
                return banner
        banner = AlertBanner(None, interactive=False)
        banner.show_recovery(recovery)
        return self._push(banner)

    def set_interactive(self, interactive: bool) -> None:
        """Buttons only work while a worker is there to hear them."""
        self._interactive = interactive
        for banner in self.banners:
            banner.set_interactive(interactive)

    def _push(self, banner: AlertBanner) -> AlertBanner:
        self.banners.append(banner)
        self._layout.insertWidget(0, banner)
        while len(self.banners) > self._max_visible:
            self.banners.pop(0).deleteLater()
        self.setVisible(True)
        return banner
