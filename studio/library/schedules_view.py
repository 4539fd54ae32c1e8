"""Automatic retraining in the runs library: the list of schedules beside the queue, and the dialog that
creates one for a finished run ("Retrain automatically…").

A schedule retrains a model line with the run's settings at set times (a cron pattern underneath, chosen here
as "every night", "every week" or typed by hand) or whenever its dataset file changes and still validates.
Each retrain joins the queue as a new version, which becomes the active one only if it is not worse.

Signals (ScheduleList):
    changed(): a schedule was removed from here.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTime, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QTimeEdit,
    QVBoxLayout,
    QWidget,
)

from studio.engine.errors import StudioError
from studio.engine.queue import Schedule, Schedules
from studio.engine.runs.registry import Registry, RunRecord
from studio.gui.tables import fit_rows
from studio.gui.widgets import Banner, wrapped_label
from studio.library.confirm import ask
from studio.library.times import clock_iso

# (name, cron day of week): cron counts Sunday as 0.
WEEKDAYS = (("Monday", 1), ("Tuesday", 2), ("Wednesday", 3), ("Thursday", 4), ("Friday", 5), ("Saturday", 6),
            ("Sunday", 0))
NIGHTLY, WEEKLY, CUSTOM, NO_TIMETABLE = range(4)
VISIBLE_ROWS = 4
ID_ROLE = Qt.ItemDataRole.UserRole


class ScheduleList(QWidget):
    """The schedules in force, with Remove (retrains they already queued stay in the queue)."""

    changed = Signal()

    def __init__(self, schedules: Schedules, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.schedules = schedules
        self.shown: list[Schedule] = []
        self.confirm: Callable[[str, str], bool] = lambda title, text: ask(self, title, text)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        top = QHBoxLayout()
        title = QLabel("Automatic retraining")
        title.setObjectName("sectionTitle")
        self.remove_button = QPushButton("Remove…")
        self.remove_button.setAccessibleName("Remove the selected schedule")
        self.remove_button.clicked.connect(self.remove_selected)
        top.addWidget(title, 1)
        top.addWidget(self.remove_button)
        layout.addLayout(top)
        self.table = QTableWidget(0, 3)
        self.table.setTabKeyNavigation(False)  # Tab moves on to the next control; arrows move in it
        self.table.setHorizontalHeaderLabels(["Model", "Retrains", "Last queued"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setAccessibleName("Automatic retraining schedules")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.empty = wrapped_label("None yet. Select a finished run below and press “Retrain automatically…”.",
                                   name="muted")
        layout.addWidget(self.table)
        layout.addWidget(self.empty)
        layout.addStretch(1)
        self._update_buttons()

    def show_schedules(self, schedules: list[Schedule]) -> None:
        """Redraw (every refresh of the queue), keeping the selected schedule selected."""
        selected = self.selected()
        self.shown = schedules
        self.table.setRowCount(len(schedules))
        for row, schedule in enumerate(schedules):
            last = clock_iso(schedule.last_queued) if schedule.last_queued else "never"
            for column, text in enumerate((schedule.name, trigger_words(schedule), last)):
                item = QTableWidgetItem(text)
                item.setData(ID_ROLE, schedule.id)
                item.setToolTip(f"Retrains {schedule.name} {schedule.trigger}.")
                self.table.setItem(row, column, item)
            if selected is not None and schedule.id == selected.id:
                self.table.selectRow(row)
        self.table.setVisible(bool(schedules))
        fit_rows(self.table, len(schedules), VISIBLE_ROWS)
        self.empty.setVisible(not schedules)
        self._update_buttons()

    def selected(self) -> Schedule | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return None
        schedule_id = self.table.item(rows[0].row(), 0).data(ID_ROLE)
        return next((s for s in self.shown if s.id == schedule_id), None)

    def _update_buttons(self) -> None:
        self.remove_button.setVisible(bool(self.shown))
        self.remove_button.setEnabled(self.selected() is not None)

    def remove_selected(self) -> None:
        schedule = self.selected()
        if schedule is None or not self.confirm(
            "Stop retraining automatically",
            f"Stop retraining {schedule.name} ({trigger_words(schedule)})? Retrains it already queued stay in the "
            "queue.",
        ):
            return
        self.schedules.remove(schedule.id)
        self.changed.emit()


def cron_words(cron: str) -> str:
    """The patterns this dialog writes, in words ("every day at 03:00", "every Monday at 09:30")."""
    parts = cron.split()
    if len(parts) == 5 and parts[0].isdigit() and parts[1].isdigit() and parts[2] == parts[3] == "*":
        at = f"{int(parts[1]):02d}:{int(parts[0]):02d}"
        if parts[4] == "*":
            return f"every day at {at}"
        day = next((name for name, number in WEEKDAYS if parts[4] == str(number)), None)
        if day is not None:
            return f"every {day} at {at}"
    return f"on the pattern “{cron}”"


def trigger_words(schedule: Schedule) -> str:
    """When a schedule retrains, as the list shows it."""
    parts = [cron_words(schedule.cron)] if schedule.cron else []
    if schedule.watch:
        parts.append(f"when {Path(schedule.config.get('dataset_path') or '?').name} changes")
    return " or ".join(parts) + (", once the computer is idle" if schedule.when_idle else "")


def cron_pattern(choice: int, at: QTime, weekday: int, custom: str) -> str | None:
    """The cron pattern behind the dialog's choice (None: no timetable, only the data file's changes)."""
    if choice == NIGHTLY:
        return f"{at.minute()} {at.hour()} * * *"
    if choice == WEEKLY:
        return f"{at.minute()} {at.hour()} * * {weekday}"
    if choice == CUSTOM:
        return " ".join(custom.split())
    return None


class ScheduleDialog(QDialog):
    """"Retrain automatically…" for one finished run; `schedule` holds what was created once accepted."""

    def __init__(self, run: RunRecord, registry: Registry, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run = run
        self.registry = registry
        self.schedule: Schedule | None = None
        self.setWindowTitle(f"Retrain {run.name} automatically")
        self.setMinimumWidth(560)
        data = Path(run.config.get("dataset_path") or "").name or "its dataset"
        layout = QVBoxLayout(self)
        heading = QLabel(f"Retrain {run.name} automatically")
        heading.setObjectName("sectionTitle")
        layout.addWidget(heading)
        self.explanation = wrapped_label(
            f"Studio trains a new version of {run.name} with the settings of {run.version}, on what {data} holds "
            "at that moment. A retrain becomes the active version only if its held-out loss is not worse than "
            "the active version's; otherwise it is kept, marked “not-activated”, and Studio tells you.")
        layout.addWidget(self.explanation)

        self.choices = QButtonGroup(self)
        self.nightly = QRadioButton("Every night at")
        self.weekly = QRadioButton("Every week on")
        self.custom = QRadioButton("Custom pattern")
        self.no_timetable = QRadioButton("Not on a timetable")
        self.night_time = QTimeEdit(QTime(3, 0))
        self.night_time.setDisplayFormat("HH:mm")
        self.night_time.setAccessibleName("Time of the nightly retrain")
        self.weekday = QComboBox()
        self.weekday.setAccessibleName("Day of the weekly retrain")
        for name, number in WEEKDAYS:
            self.weekday.addItem(name, number)
        self.week_time = QTimeEdit(QTime(3, 0))
        self.week_time.setDisplayFormat("HH:mm")
        self.week_time.setAccessibleName("Time of the weekly retrain")
        self.pattern = QLineEdit()
        self.pattern.setPlaceholderText("minute hour day month weekday, e.g. 0 */6 * * *")
        self.pattern.setAccessibleName("Custom cron pattern")
        grid = QGridLayout()
        grid.addWidget(self.nightly, 0, 0)
        night = QHBoxLayout()
        night.addWidget(self.night_time)
        night.addStretch(1)
        grid.addLayout(night, 0, 1)
        grid.addWidget(self.weekly, 1, 0)
        week = QHBoxLayout()
        week.addWidget(self.weekday)
        week.addWidget(QLabel("at"))
        week.addWidget(self.week_time)
        week.addStretch(1)
        grid.addLayout(week, 1, 1)
        grid.addWidget(self.custom, 2, 0)
        grid.addWidget(self.pattern, 2, 1)
        grid.addWidget(self.no_timetable, 3, 0, 1, 2)
        grid.setColumnStretch(1, 1)
        for number, button in enumerate((self.nightly, self.weekly, self.custom, self.no_timetable)):
            self.choices.addButton(button, number)
        self.nightly.setChecked(True)
        layout.addLayout(grid)
        self.watch = QCheckBox(f"Also whenever {data} changes (and still passes the data check)")
        self.idle = QCheckBox("Only when the computer is idle (no other training, graphics card mostly free)")
        layout.addWidget(self.watch)
        layout.addWidget(self.idle)
        layout.addWidget(wrapped_label(
            "Retrains join the queue at the top of the runs library; the queue must be running to train them.",
            name="muted"))
        self.problem_label = wrapped_label(name="blocker")
        self.problem_label.setAccessibleName("What is wrong with the schedule")
        layout.addWidget(self.problem_label)
        self.banner = Banner()
        layout.addWidget(self.banner)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.reject)
        self.create_button = QPushButton("Create schedule")
        self.create_button.setObjectName("primary")
        self.create_button.setDefault(True)
        self.create_button.clicked.connect(self.create_schedule)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.create_button)
        layout.addLayout(buttons)

        self.choices.idToggled.connect(lambda _id, _on: self._check())
        self.pattern.textChanged.connect(self._check)
        self.pattern.textEdited.connect(lambda _text: self.custom.setChecked(True))
        self.watch.toggled.connect(self._check)
        self._check()

    def cron(self) -> str | None:
        return cron_pattern(self.choices.checkedId(), self.week_time.time() if self.weekly.isChecked()
                            else self.night_time.time(), int(self.weekday.currentData()), self.pattern.text())

    def problem(self) -> str | None:
        """Why the schedule cannot be created as it stands, in words; None when it can."""
        from studio.engine.queue.schedules import check_cron

        cron = self.cron()
        if cron is None:
            return None if self.watch.isChecked() else (
                "Choose when to retrain, or tick “whenever the data changes”.")
        if not cron:
            return "Type a pattern of five parts (minute hour day month weekday), e.g. “0 3 * * *” for 3:00 " \
                   "every night."
        try:
            check_cron(cron)
        except StudioError as error:
            return f"{error.what} {error.why} For example: {' '.join(error.actions)}"
        return None

    def _check(self) -> None:
        problem = self.problem()
        self.problem_label.setText(problem or "")
        self.problem_label.setVisible(problem is not None)
        self.create_button.setEnabled(problem is None)

    def create_schedule(self) -> None:
        """Create the schedule with the run's recipe, trained fresh each time (no adapter to start from)."""
        from studio.engine.config import TrainConfig

        if self.problem() is not None:
            return
        try:
            config = TrainConfig.from_dict({**self.run.config, "init_adapter": None, "compare_adapter": None})
            self.schedule = Schedules(self.registry).add(self.run.name, config, cron=self.cron(),
                                                         watch=self.watch.isChecked(), when_idle=self.idle.isChecked())
        except StudioError as error:
            self.banner.show_error(error)
            return
        self.accept()
