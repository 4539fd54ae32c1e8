"""The main window's part in the queue: the wizard's "Add to queue" lands in the queue shown in Runs, Watch on a
queued run in training opens the dashboard, and notices from the queue appear in Runs and on the desktop."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from PySide6.QtCore import QDateTime

from studio.engine.config import TrainConfig
from studio.engine.queue import RunQueue
from studio.engine.runs.notices import add_notice, unseen_notices
from studio.engine.runs.registry import Registry
from studio.wizard.state import WizardState


def test_add_to_queue_in_the_wizard_queues_its_config_and_shows_the_queue(
    qtbot, make_window, click, tiny_model_dir: Path, tiny_chat_file: Path
):
    state = WizardState(
        onboarding_done=True, profile_id="chatbot", dataset_path=str(tiny_chat_file),
        model_ref=str(tiny_model_dir), overrides={"max_steps": 2, "eval_fraction": 0.0}, page=1,
    )
    window = make_window(state=state)
    wizard = window.wizard
    wizard.start()
    qtbot.waitUntil(lambda: wizard.ready and wizard.next_button.isEnabled(), timeout=120_000)  # data checked
    assert not wizard.queue_button.isVisible()  # only on the last step, beside Launch
    for _ in range(3):  # model, settings, review
        click(wizard.next_button)
        qtbot.waitUntil(lambda: wizard.next_button.isEnabled(), timeout=60_000)
    review = wizard.page
    start = (datetime.now() + timedelta(hours=3)).replace(second=0, microsecond=0)
    click(review.queue_options.later)
    review.queue_options.start_at.setDateTime(QDateTime(start))
    click(review.queue_options.idle)
    assert wizard.queue_button.isVisible() and wizard.queue_button.isEnabled()

    click(wizard.queue_button)
    assert window.stack.currentWidget() is window.runs
    queue_view = window.library.queue_view
    assert queue_view.isVisible() and len(RunQueue().entries()) == 1  # in line at once
    qtbot.waitUntil(lambda: not queue_view.estimating, timeout=120_000)  # the training time follows
    (entry,) = RunQueue().entries()
    assert entry.state == "waiting" and entry.when_idle and entry.estimate_s is not None
    assert entry.not_before is not None and entry.not_before.astimezone().replace(tzinfo=None) == start
    assert TrainConfig.from_dict(Registry().get(entry.run_id).config) == wizard.session.final_config()
    assert queue_view.table.item(0, 0).text() == f"{entry.name} 1.0.0"
    assert "when the computer is idle" in queue_view.table.item(0, 4).text()
    assert window.stack.currentWidget() is window.runs and window.dashboard is None  # nothing started

    RunQueue().start(entry.id)  # what the queue's runner does when its turn comes
    queue_view.refresh()
    click(queue_view.watch_button)
    assert window.stack.currentWidget() is window.dashboard
    qtbot.waitUntil(lambda: window.dashboard.run_dir == entry.run_dir, timeout=10_000)


def test_notices_show_in_runs_and_as_desktop_notifications(qtbot, make_window, click):
    window = make_window(opened=True)
    qtbot.waitUntil(lambda: window.notice_timer.isActive(), timeout=60_000)  # watched once the engine is up
    notifier = window.ensure_notifier()
    notifier.settings.do_not_disturb = False
    registry = Registry()
    add_notice(registry, "error", "pip 1.2.0 failed; the queue moved on", "Failed: out of memory.", "run-x")
    with qtbot.waitSignal(notifier.notified) as shown:
        window.check_notices()
    assert shown.args == ["pip 1.2.0 failed; the queue moved on", "Failed: out of memory."]
    assert unseen_notices(registry) == []  # read once, shown once
    window.show_runs()
    assert window.notices.isVisible()
    assert "pip 1.2.0 failed; the queue moved on. Failed: out of memory." in window.notices.text()

    notifier.settings.do_not_disturb = True  # no pop-ups, but the list in Runs still says it
    add_notice(registry, "warning", "pip 1.3.0 was kept but not made active", "Its held-out loss is worse.")
    with qtbot.assertNotEmitted(notifier.notified):
        window.check_notices()
    assert "2 messages" in window.notices.text() and "not made active" in window.notices.text()
    click(window.notices.dismiss_button)
    assert not window.notices.isVisible()
