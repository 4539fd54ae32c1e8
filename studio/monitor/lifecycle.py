"""What closing the window means while a model trains: the user chooses, nothing is lost by accident."""

from __future__ import annotations

from enum import Enum

from PySide6.QtWidgets import QMessageBox, QWidget


class CloseChoice(Enum):
    KEEP = "keep"  # the worker keeps training; the app can reattach after a restart
    PAUSE_RELEASE = "pause_release"  # checkpoint, free memory, resume later
    STOP = "stop"  # checkpoint and end the run
    CANCEL = "cancel"  # do not close


def ask_close_choice(parent: QWidget) -> CloseChoice:
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("A model is still training")
    box.setText("A model is still training. What should happen to it?")
    box.setInformativeText(
        "Keep training: it goes on without the window; open Studio again to watch it.\n"
        "Pause and free memory: Studio saves a checkpoint; resume it whenever you like.\n"
        "Stop: Studio saves a checkpoint and ends the run."
    )
    keep = box.addButton("Keep training in the background", QMessageBox.ButtonRole.AcceptRole)
    pause = box.addButton("Pause and free memory", QMessageBox.ButtonRole.ActionRole)
    stop = box.addButton("Stop training", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(keep)
    box.exec()
    return {keep: CloseChoice.KEEP, pause: CloseChoice.PAUSE_RELEASE, stop: CloseChoice.STOP}.get(
        box.clickedButton(), CloseChoice.CANCEL
    )
