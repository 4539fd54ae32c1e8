"""The queue panel driven as a person would: entries in order with their times, move, remove, pause, start
(the real command line, and once the real runner on an empty queue), watch, and adding in the background."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from filelock import FileLock

from studio.engine.config import TrainConfig
from studio.engine.queue import RunQueue, Schedules, timeline
from studio.engine.queue.runner import runner_lock_path
from studio.engine.runs.registry import Registry
from studio.library.queue_view import COLUMNS, QueueView, runner_command, runner_log, start_runner
from studio.library.times import clock


def make_config(tmp_path: Path) -> TrainConfig:
    data = tmp_path / "data.jsonl"
    if not data.exists():
        data.write_text('{"prompt": "hi", "completion": "hello"}\n' * 3, encoding="utf-8")
    return TrainConfig.from_dict({"dataset_path": str(data), "max_steps": 2})


@pytest.fixture
def view(qtbot) -> QueueView:
    view = QueueView(Registry())
    qtbot.addWidget(view, before_close_func=lambda v: v.shutdown())
    view.resize(1100, 400)
    view.launched = []  # type: ignore[attr-defined]
    view.launcher = view.launched.append  # type: ignore[attr-defined]
    view.show()
    return view


def cells(view: QueueView, column: str) -> list[str]:
    index = COLUMNS.index(column)
    return [view.table.item(row, index).text() for row in range(view.table.rowCount())]


def select(view: QueueView, row: int) -> None:
    view.table.selectRow(row)
    assert view.selected_entry() is view.entries[row]


def test_entries_show_in_order_with_estimated_start_finish_and_conditions(view, tmp_path):
    queue = RunQueue()
    config = make_config(tmp_path)
    later = datetime.now(timezone.utc) + timedelta(hours=30)
    running = queue.add(config, "pip", estimate_s=1200.0)
    queue.add(config, "support", when_idle=True)  # not estimated: half an hour is guessed
    queue.add(config, "pip", estimate_s=600.0, not_before=later)
    queue.start(running.id)
    view.refresh()

    assert cells(view, "Run") == ["pip 1.0.0", "support 1.0.0", "pip 1.0.1"]
    assert cells(view, "State") == ["Training", "Waiting", "Waiting"]
    slots = timeline(queue.entries())
    assert cells(view, "Starts") == [f"started {clock(slots[0].start)}", clock(slots[1].start), clock(later)]
    finishes = cells(view, "Finishes")
    assert finishes[0] == clock(slots[0].finish) and finishes[1] == f"{clock(slots[1].finish)} (guess)"
    assert finishes[2] == clock(later + timedelta(minutes=10))
    assert cells(view, "Condition") == ["–", "when the computer is idle", f"not before {clock(later)}"]
    assert view.state_badge.text() == "Not running" and view.start_button.isEnabled()
    assert not view.empty.isVisible()


def test_move_up_and_down_change_the_order_in_the_registry(view, tmp_path, click):
    queue = RunQueue()
    for name in ("a", "b", "c"):
        queue.add(make_config(tmp_path), name, estimate_s=60.0)
    view.refresh()
    select(view, 0)
    assert not view.up_button.isEnabled() and view.down_button.isEnabled()
    select(view, 2)
    assert not view.down_button.isEnabled()
    click(view.up_button)
    assert [e.name for e in RunQueue(Registry()).entries()] == ["a", "c", "b"]
    assert cells(view, "Run") == ["a 1.0.0", "c 1.0.0", "b 1.0.0"]
    assert view.selected_entry().name == "c"  # the moved entry stays selected
    click(view.up_button)
    click(view.down_button)
    click(view.down_button)
    assert [e.name for e in RunQueue(Registry()).entries()] == ["a", "b", "c"]


def test_remove_asks_first_then_deletes_the_unstarted_run(view, tmp_path, click):
    queue = RunQueue()
    entry = queue.add(make_config(tmp_path), "pip", estimate_s=60.0)
    view.refresh()
    questions: list[str] = []
    view.confirm = lambda _title, text: questions.append(text) or False
    select(view, 0)
    click(view.remove_button)
    assert "has not started" in questions[0] and queue.entries() == [entry]  # answered No: nothing happened
    view.confirm = lambda _title, _text: True
    click(view.remove_button)
    assert queue.entries() == [] and Registry().get(entry.run_id) is None and not entry.run_dir.exists()
    assert "Removed pip 1.0.0" in view.banner.text()
    assert view.empty.isVisible() and not view.table.isVisible()


def test_removing_the_running_entry_explains_it_stops_with_a_checkpoint(view, tmp_path, click):
    queue = RunQueue()
    entry = queue.add(make_config(tmp_path), "pip")
    queue.start(entry.id)
    view.refresh()
    questions: list[str] = []
    view.confirm = lambda _title, text: questions.append(text) or True
    select(view, 0)
    click(view.remove_button)
    assert "stops after its current step and keeps a checkpoint" in questions[0]
    assert queue.get(entry.id).state == "cancelled"
    assert "Asked pip 1.0.0 to stop" in view.banner.text()


def test_pause_and_resume_the_queue(view, tmp_path, click):
    RunQueue().add(make_config(tmp_path), "pip")
    view.refresh()
    click(view.pause_button)
    assert RunQueue().is_paused()
    assert view.state_badge.text() == "Paused" and view.pause_button.text() == "Resume queue"
    assert cells(view, "State") == ["Waiting (queue paused)"]
    click(view.pause_button)
    assert not RunQueue().is_paused() and view.state_badge.text() == "Not running"


def test_start_launches_the_runner_and_waits_for_it_to_take_the_queue(view, tmp_path, click):
    RunQueue().add(make_config(tmp_path), "pip")
    view.refresh()
    click(view.start_button)
    assert view.launched == [[sys.executable, "-m", "studio.cli.main", "queue", "run"]]
    assert view.state_badge.text() == "Starting…" and not view.start_button.isEnabled()
    with FileLock(str(runner_lock_path())):  # what the runner holds while it works
        view.refresh()
        assert view.state_badge.text() == "Working through the queue"
        assert view.start_button.text() == "Stop queue" and view.start_button.isEnabled()
        view.confirm = lambda _title, _text: False
        click(view.start_button)  # asked first; No leaves it running
        assert view.launched == [[sys.executable, "-m", "studio.cli.main", "queue", "run"]]
    view._starting_until = 0.0  # the runner finished; nothing is starting any more
    view.refresh()
    assert view.state_badge.text() == "Not running" and view.start_button.isEnabled()


def test_with_a_schedule_the_runner_keeps_watching(view, tmp_path, click):
    Schedules().add("pip", make_config(tmp_path), cron="0 3 * * *")
    view.refresh()
    assert view.start_button.isEnabled()  # nothing queued yet, but retrains will come
    click(view.start_button)
    assert view.launched == [runner_command(watch=True)] and view.launched[0][-1] == "--watch"


def test_the_real_runner_command_works_through_an_empty_queue_detached(tmp_path):
    assert start_runner(runner_command(watch=False)).wait(timeout=180) == 0
    assert "Queue finished: 0 done, 0 failed." in runner_log().read_text(encoding="utf-8")
    # Started in its own session (as its own leader), so closing Studio or its terminal does not stop it.
    probe = start_runner([sys.executable, "-c", "import os; print('own session:', os.getsid(0) == os.getpid())"])
    assert probe.wait(timeout=60) == 0
    assert "own session: True" in runner_log().read_text(encoding="utf-8")


def test_watch_follows_the_run_in_training(view, tmp_path, click, qtbot):
    queue = RunQueue()
    entry = queue.add(make_config(tmp_path), "pip")
    view.refresh()
    assert not view.watch_button.isEnabled()
    queue.start(entry.id)
    view.refresh()
    with qtbot.waitSignal(view.watchRequested) as watched:
        click(view.watch_button)
    assert watched.args == [entry.run_id]


def test_adding_queues_at_once_and_estimates_in_the_background(view, tmp_path, qtbot):
    estimated: list[TrainConfig] = []
    view.estimate = lambda config: estimated.append(config) or 900.0
    config = make_config(tmp_path)
    start = datetime.now() + timedelta(hours=2)
    entry = view.add(config, "pip", not_before=start, when_idle=True)
    assert entry is not None and entry.when_idle and entry.estimate_s is None  # in line before any estimate
    assert cells(view, "Run") == ["pip 1.0.0"] and "Queued pip 1.0.0" in view.banner.text()
    assert view.selected_entry().id == entry.id
    qtbot.waitUntil(lambda: not view.estimating, timeout=20_000)
    assert estimated == [config] and RunQueue().get(entry.id).estimate_s == 900.0
    assert TrainConfig.from_dict(Registry().get(entry.run_id).config) == config
    assert cells(view, "Condition") == [f"not before {clock(start)}, when the computer is idle"]
    assert "(guess)" not in cells(view, "Finishes")[0]
