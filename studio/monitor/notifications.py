"""Desktop notifications for a run: 25/50/75/100%, errors and anomalies, and its progress on the taskbar.

People start a run and go do something else; these bring them back at the moments that matter. Each
milestone fires once per run (attaching to a run already at 60% does not replay 25% and 50%). On a Linux
desktop they go through its notification service (so its own Do Not Disturb applies) and the progress shows
on Studio's taskbar or dock entry (studio.gui.desktop_bus); elsewhere the tray icon shows them. Studio's own
"Do not disturb" overrides the desktop's and silences pop-ups and sound; the tray tooltip and the taskbar keep
showing progress either way. The dashboard's "Notifications" button changes both settings while a run
trains, and they are saved for the next run.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QApplication, QMenu, QStyle, QSystemTrayIcon, QToolButton, QWidget

from studio.engine.events import Anomaly, Error
from studio.engine.paths import studio_home
from studio.gui.desktop_bus import DesktopBus
from studio.monitor.state import RunState, RunStatus

MILESTONES = (25, 50, 75, 100)


def settings_store() -> QSettings:
    """GUI preferences live beside the run data, so STUDIO_HOME (and tests) keep them apart."""
    return QSettings(str(studio_home() / "gui-settings.ini"), QSettings.Format.IniFormat)


@dataclass
class NotificationSettings:
    do_not_disturb: bool = False
    sound: bool = False

    @classmethod
    def load(cls) -> NotificationSettings:
        store = settings_store()
        return cls(
            do_not_disturb=store.value("notifications/do_not_disturb", False, type=bool),
            sound=store.value("notifications/sound", False, type=bool),
        )

    def save(self) -> None:
        store = settings_store()
        store.setValue("notifications/do_not_disturb", self.do_not_disturb)
        store.setValue("notifications/sound", self.sound)
        store.sync()


class Notifier(QObject):
    """Decides when to notify and shows it through the desktop's notification service, else in the tray.

    Signals:
        notified(str, str): title and message of a notification that was shown (not silenced).
    """

    notified = Signal(str, str)

    def __init__(
        self, settings: NotificationSettings | None = None, parent: QObject | None = None, bus: DesktopBus | None = None
    ) -> None:
        super().__init__(parent)
        self.settings = settings or NotificationSettings.load()
        self.bus = bus or DesktopBus()
        self._run_id = ""
        self._fired: set[int] = set()
        self.tray: QSystemTrayIcon | None = None
        if QSystemTrayIcon.isSystemTrayAvailable():
            app = QApplication.instance()
            icon = app.windowIcon() if isinstance(app, QApplication) else None
            if icon is None or icon.isNull():
                icon = app.style().standardIcon(QStyle.StandardPixmap.SP_ComputerIcon)  # type: ignore[union-attr]
            self.tray = QSystemTrayIcon(icon, self)
            self.tray.setToolTip("Studio")
            self.tray.show()

    def begin(self, state: RunState) -> None:
        """Start watching a run; milestones it has already passed are treated as announced."""
        self._run_id = state.run_id
        self._fired = {m for m in MILESTONES if state.fraction * 100 >= m}
        self._tooltip(state)

    def observe(self, state: RunState) -> None:
        """Called after new events were folded into the state."""
        if state.run_id != self._run_id:
            self.begin(state)
            return
        percent = state.fraction * 100
        for milestone in MILESTONES:
            if percent >= milestone and milestone not in self._fired:
                self._fired.add(milestone)
                if milestone == 100:
                    self.notify("Training finished", "Your model is ready. Open Studio to try it.")
                else:
                    self.notify(f"Training {milestone}% done",
                                f"Step {state.step:,} of {state.total_steps:,}.")
        self._tooltip(state)

    def anomaly(self, event: Anomaly) -> None:
        self.notify("Training needs attention" if event.severity == "critical" else "Training note",
                    event.message, critical=event.severity == "critical")

    def error(self, event: Error) -> None:
        self.notify("Training failed", event.message, critical=True)
        self.bus.set_urgent(True)

    def notify(self, title: str, message: str, critical: bool = False) -> None:
        if self.settings.do_not_disturb:
            return
        # The desktop's notification server shows it (or holds it for its own Do Not Disturb); else the tray.
        if not self.bus.notify(title, message, critical) and self.tray is not None:
            kind = QSystemTrayIcon.MessageIcon
            self.tray.show()  # hidden when a dashboard stopped watching; the queue's notices still come through
            self.tray.showMessage(title, message, kind.Critical if critical else kind.Information, 8000)
        if self.settings.sound:
            QApplication.beep()
        self.notified.emit(title, message)

    def close(self) -> None:
        self.bus.close()
        if self.tray is not None:
            self.tray.hide()

    def _tooltip(self, state: RunState) -> None:
        training = state.status in {RunStatus.STARTING, RunStatus.RUNNING, RunStatus.PAUSED}
        self.bus.set_progress(state.fraction if training else None)
        if self.tray is not None:
            self.tray.setToolTip(f"Studio: {state.status.value}, {state.fraction:.0%} "
                                 f"(step {state.step:,} of {state.total_steps:,})")


# (setting, menu text, tooltip), in menu order.
TOGGLES = (
    ("do_not_disturb", "Do not disturb",
     "Show no pop-up messages and play no sounds about training. The dashboard still shows everything."),
    ("sound", "Play a sound on alerts",
     "Beep with each pop-up message: at 25%, 50% and 75%, when training finishes and when something goes "
     "wrong."),
)


class NotificationsButton(QToolButton):
    """The dashboard's "Notifications" menu: the notifier's settings as ticks, applied at once and saved, so
    someone who is about to walk away can silence (or turn up) a run that is already training."""

    def __init__(self, notifier: Notifier, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.notifier = notifier
        self.setText("Notifications")
        self.setToolTip("Choose how Studio tells you about this training while you work in other windows.")
        self.setAccessibleName("Notification settings")
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        menu = QMenu(self)
        menu.setToolTipsVisible(True)
        menu.setAccessibleName("Notification settings")
        self.toggles: dict[str, QAction] = {}
        for setting, text, tip in TOGGLES:
            action = menu.addAction(text)
            action.setCheckable(True)
            action.setChecked(getattr(notifier.settings, setting))
            action.setToolTip(tip)
            action.toggled.connect(lambda on, s=setting: self._set(s, on))
            self.toggles[setting] = action
        self.setMenu(menu)

    def _set(self, setting: str, on: bool) -> None:
        setattr(self.notifier.settings, setting, on)
        self.notifier.settings.save()
