"""Tray notifications fire once per milestone; closing asks what to do; unfinished runs are listed."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMenu, QToolButton

from studio.engine.config import TrainConfig
from studio.engine.control import ControlCommand
from studio.engine.events import Error, Progress, Started
from studio.engine.runs.registry import Registry
from studio.monitor.lifecycle import CloseChoice
from studio.monitor.notifications import NotificationsButton, NotificationSettings, Notifier
from studio.monitor.resumable import ResumableRunsPanel
from studio.monitor.state import RunState


def state_at(step: int, total: int = 100) -> RunState:
    state = RunState(run_id="r")
    state.apply(Progress(run_id="r", step=step, total_steps=total))
    return state


def test_each_milestone_fires_once(qtbot) -> None:
    notifier = Notifier(NotificationSettings())
    titles: list[str] = []
    notifier.notified.connect(lambda title, message: titles.append(title))
    notifier.begin(state_at(0))
    for step in (10, 25, 26, 49, 50, 50, 74, 80, 99, 100, 100):
        notifier.observe(state_at(step))
    assert titles == ["Training 25% done", "Training 50% done", "Training 75% done", "Training finished"]


def test_attaching_mid_run_does_not_replay_old_milestones(qtbot) -> None:
    notifier = Notifier(NotificationSettings())
    titles: list[str] = []
    notifier.notified.connect(lambda title, message: titles.append(title))
    notifier.observe(state_at(60))  # first sight of this run: 25% and 50% are old news
    notifier.observe(state_at(76))
    assert titles == ["Training 75% done"]


def test_do_not_disturb_silences_everything(qtbot) -> None:
    settings = NotificationSettings(do_not_disturb=True, sound=True)
    settings.save()
    notifier = Notifier()  # reads the saved setting
    assert notifier.settings.do_not_disturb
    with qtbot.assertNotEmitted(notifier.notified):
        notifier.begin(state_at(0))
        notifier.observe(state_at(100))
        notifier.error(Error(run_id="r", code="x", message="boom"))


def choose_in_menu(qtbot, button: QToolButton, text: str) -> None:
    """Click the button, then the menu entry called `text`, as a person would. The menu runs its own event
    loop, so the second click is queued before the first; a menu left open is closed so a failure cannot hang."""
    picked: list[str] = []

    def pick() -> None:
        menu = QApplication.activePopupWidget()
        if not isinstance(menu, QMenu):
            return
        action = next((a for a in menu.actions() if a.text() == text), None)
        if action is not None:
            qtbot.mouseClick(menu, Qt.MouseButton.LeftButton, pos=menu.actionGeometry(action).center())
            picked.append(text)
        menu.close()

    QTimer.singleShot(0, pick)
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert picked == [text], f"the menu did not offer {text!r}"


def test_notifications_menu_changes_the_running_notifier_and_saves(qtbot, dashboard) -> None:
    button, notifier = dashboard.notifications, dashboard.notifier
    assert button.isVisible() and button.accessibleName() and button.toolTip()
    toggles = button.toggles
    assert all(action.isCheckable() and action.toolTip() for action in toggles.values())
    assert not toggles["do_not_disturb"].isChecked() and not toggles["sound"].isChecked()

    choose_in_menu(qtbot, button, "Do not disturb")
    assert toggles["do_not_disturb"].isChecked() and notifier.settings.do_not_disturb
    assert NotificationSettings.load().do_not_disturb
    with qtbot.assertNotEmitted(notifier.notified):
        notifier.notify("Training finished", "Your model is ready.")

    choose_in_menu(qtbot, button, "Do not disturb")
    assert not toggles["do_not_disturb"].isChecked() and not NotificationSettings.load().do_not_disturb
    with qtbot.waitSignal(notifier.notified, timeout=1000) as shown:
        notifier.notify("Training finished", "Your model is ready.")
    assert shown.args == ["Training finished", "Your model is ready."]

    choose_in_menu(qtbot, button, "Play a sound on alerts")
    assert notifier.settings.sound
    assert NotificationSettings.load() == NotificationSettings(do_not_disturb=False, sound=True)

    reopened = NotificationsButton(Notifier())  # a later session shows what was saved
    qtbot.addWidget(reopened)
    assert reopened.toggles["sound"].isChecked() and not reopened.toggles["do_not_disturb"].isChecked()


def test_closing_while_training_asks_and_honours_the_answer(qtbot, dashboard) -> None:
    sent: list[ControlCommand] = []
    dashboard.bridge.set_sender(sent.append)
    dashboard.bridge.feed_events([Started(run_id="r", total_steps=10), Progress(run_id="r", step=1, total_steps=10)])
    asked: list[bool] = []

    def answer(choice: CloseChoice):
        def ask(parent):
            asked.append(True)
            return choice
        return ask

    dashboard.ask_close_choice = answer(CloseChoice.CANCEL)
    assert not dashboard.handle_close_request() and asked == [True] and sent == []
    dashboard.ask_close_choice = answer(CloseChoice.KEEP)
    assert dashboard.handle_close_request()  # the worker keeps training; nothing is sent
    assert sent == [] and not dashboard.is_watching()
    assert dashboard.handle_close_request() and asked == [True, True]  # detached: closes without asking


def test_pause_and_release_on_close_waits_for_the_worker(qtbot, dashboard) -> None:
    sent: list[ControlCommand] = []

    def worker_obeys(command: ControlCommand) -> None:
        sent.append(command)
        dashboard.bridge.feed_line('{"event":"paused","run_id":"r","released":true,"step":3}')
        dashboard.bridge.notify_exit(0)

    dashboard.bridge.set_sender(worker_obeys)
    dashboard.bridge.feed_events([Started(run_id="r", total_steps=10), Progress(run_id="r", step=3, total_steps=10)])
    dashboard.ask_close_choice = lambda parent: CloseChoice.PAUSE_RELEASE
    assert dashboard.handle_close_request()
    assert sent == [ControlCommand("pause_release")]


def test_unfinished_runs_are_listed_with_resume(qtbot, tmp_path: Path) -> None:
    registry = Registry()
    config = TrainConfig()
    for run_id, status in (("a", "paused"), ("b", "interrupted"), ("c", "completed"), ("d", "failed")):
        registry.create_run(run_id, f"run-{run_id}", config, tmp_path / run_id)
        registry.set_status(run_id, status)
    panel = ResumableRunsPanel(registry)
    qtbot.addWidget(panel)
    assert {r.id for r in panel.records} == {"a", "b"}
    with qtbot.waitSignal(panel.resumeRequested) as blocker:
        panel.buttons["b"]["resume"].click()
    assert blocker.args == ["b"]
    with qtbot.waitSignal(panel.openRequested) as blocker:
        panel.buttons["a"]["open"].click()
    assert blocker.args == ["a"]


def test_attach_follows_a_run_trained_by_another_process(qtbot, dashboard, tmp_path: Path) -> None:
    """After a restart the worker is not our child: its events.jsonl is followed, commands go to its folder."""
    import os

    from studio.engine.runs.folders import create_run_dir
    from studio.engine.training.control_channel import control_dir
    from studio.monitor.state import RunStatus

    config = TrainConfig(max_steps=10)
    run_dir = create_run_dir(config, "elsewhere")
    registry = Registry()
    registry.create_run("elsewhere", "elsewhere", config, run_dir)
    registry.mark_running("elsewhere", pid=os.getpid())  # a live process stands in for the worker
    events = run_dir / "events.jsonl"
    events.write_text(Started(run_id="elsewhere", total_steps=10).to_json() + "\n"
                      + Progress(run_id="elsewhere", step=3, total_steps=10).to_json() + "\n", encoding="utf-8")
    with qtbot.waitSignal(dashboard.historyLoaded, timeout=10000):
        dashboard.attach("elsewhere")
    qtbot.waitUntil(lambda: dashboard.state.step == 3 and "pause" in dashboard.controls.enabled_buttons())
    with events.open("a", encoding="utf-8") as handle:
        handle.write(Progress(run_id="elsewhere", step=4, total_steps=10).to_json() + "\n")
    qtbot.waitUntil(lambda: dashboard.state.step == 4, timeout=10000)
    dashboard.controls.buttons["pause"].click()
    dropped = list(control_dir(run_dir).glob("*.json"))
    assert len(dropped) == 1 and '"pause"' in dropped[0].read_text(encoding="utf-8")
    assert dashboard.state.status is RunStatus.RUNNING  # until the worker itself says it paused
