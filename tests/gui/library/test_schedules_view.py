""""Retrain automatically…": the dialog checks a typed pattern as it is typed, creates the schedule from the run's
recipe, and the list beside the queue shows and removes it."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QTime

from studio.engine.queue import Schedules
from studio.library.schedules_view import ScheduleDialog, cron_words


@pytest.fixture
def page(open_library_page, library):
    return open_library_page(library.registry)


@pytest.fixture
def dialog(qtbot, library) -> ScheduleDialog:
    dialog = ScheduleDialog(library.child, library.registry)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_a_bad_pattern_is_explained_as_it_is_typed(dialog, qtbot, click):
    click(dialog.custom)
    assert dialog.problem_label.isVisible() and "five parts" in dialog.problem_label.text()
    qtbot.keyClicks(dialog.pattern, "every night")
    assert "'every night' is not a schedule Studio understands" in dialog.problem_label.text()
    assert "0 3 * * *" in dialog.problem_label.text()  # an example of what works
    assert not dialog.create_button.isEnabled()
    dialog.pattern.clear()
    qtbot.keyClicks(dialog.pattern, "0 */6 * * *")
    assert not dialog.problem_label.isVisible() and dialog.create_button.isEnabled()
    click(dialog.no_timetable)
    assert "Choose when to retrain" in dialog.problem_label.text() and not dialog.create_button.isEnabled()
    click(dialog.watch)
    assert dialog.create_button.isEnabled()


def test_a_weekly_schedule_is_created_from_the_runs_recipe(dialog, library, qtbot, click):
    click(dialog.weekly)
    dialog.weekday.setCurrentIndex(dialog.weekday.findText("Tuesday"))
    dialog.week_time.setTime(QTime(9, 30))
    click(dialog.idle)
    with qtbot.waitSignal(dialog.accepted):
        click(dialog.create_button)
    (schedule,) = Schedules(library.registry).list()
    assert schedule is dialog.schedule or schedule.id == dialog.schedule.id
    assert schedule.name == "pip" and schedule.cron == "30 9 * * 2" and schedule.when_idle and not schedule.watch
    assert schedule.config["init_adapter"] is None and schedule.config["compare_adapter"] is None
    assert schedule.config["learning_rate"] == library.child.config["learning_rate"]
    assert cron_words(schedule.cron) == "every Tuesday at 09:30"


def test_from_the_library_to_the_list_and_removed_again(page, library, qtbot, click):
    page.select([library.parent.id])
    click(page.schedule_button)
    dialog = page.schedule_dialog
    assert dialog is not None and dialog.isVisible()
    assert "only if its held-out loss is not worse than the active version's" in dialog.explanation.text()
    click(dialog.no_timetable)
    click(dialog.watch)
    click(dialog.create_button)
    qtbot.waitUntil(lambda: page.schedule_dialog is None)
    assert "pip is retrained" in page.banner.text()
    schedules = page.queue_view.schedule_list
    assert schedules.table.rowCount() == 1
    assert schedules.table.item(0, 1).text() == "when qa.jsonl changes"
    assert page.queue_view.start_button.isEnabled()  # a runner is needed to train the retrains

    schedules.table.selectRow(0)
    schedules.confirm = lambda _title, text: "already queued stay in the queue" in text
    click(schedules.remove_button)
    assert Schedules(library.registry).list() == []
    assert not schedules.table.isVisible() and schedules.empty.isVisible()
