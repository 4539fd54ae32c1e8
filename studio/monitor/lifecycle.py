"""What closing the window means while a model trains: the user chooses, nothing is lost by accident (and on
a rented GPU, nothing is left billing unless the user chose to keep it training)."""

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
    if getattr(parent, "rented", None) is not None:  # the dashboard of a run on a rented GPU
        box.setInformativeText(
            "Keep training: the rented GPU goes on (and is billed) without the window, up to the budget cap; "
            "open Studio again to watch it.\n"
            "Pause and return the machine: Studio copies a checkpoint here and switches the machine off; resume "
            "it on a new one whenever you like.\n"
            "Stop: Studio copies a checkpoint here, ends the run and switches the machine off."
        )
        pause_text = "Pause and return the machine"
    else:
        box.setInformativeText(
            "Keep training: it goes on without the window; open Studio again to watch it.\n"
            "Pause and free memory: Studio saves a checkpoint; resume it whenever you like.\n"
            "Stop: Studio saves a checkpoint and ends the run."
        )
        pause_text = "Pause and free memory"
    keep = box.addButton("Keep training in the background", QMessageBox.ButtonRole.AcceptRole)
    pause = box.addButton(pause_text, QMessageBox.ButtonRole.ActionRole)
    stop = box.addButton("Stop training", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(keep)
    box.exec()
    return {keep: CloseChoice.KEEP, pause: CloseChoice.PAUSE_RELEASE, stop: CloseChoice.STOP}.get(
        box.clickedButton(), CloseChoice.CANCEL
    )
