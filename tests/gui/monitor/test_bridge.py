"""The bridge: lines in, typed signals out; bad lines are logged and skipped; commands are announced."""

from __future__ import annotations

import logging
from pathlib import Path

from studio.engine.control import ControlCommand
from studio.engine.events import Anomaly, Progress
from studio.monitor.bridge import EventFileReader, RunBridge


def test_malformed_lines_are_logged_and_skipped(qtbot, caplog) -> None:
    bridge = RunBridge()
    rejected: list[str] = []
    batches: list[list] = []
    bridge.lineRejected.connect(rejected.append)
    bridge.events.connect(batches.append)
    caplog.set_level(logging.WARNING)
    for line in ("{not json", '{"event": "teleported", "run_id": "r"}', '{"event": "progress", "run_id": "r"}',
                 "\x00\xff", "[]", ""):
        bridge.feed_line(line)
    assert len(rejected) == 5 and batches == []
    assert "not an event" in caplog.text
    bridge.feed_line(Progress(run_id="r", step=1, total_steps=2, loss=1.0).to_json())
    assert len(batches) == 1 and batches[0][0].step == 1


def test_live_events_get_typed_signals_history_does_not(qtbot) -> None:
    bridge = RunBridge()
    anomaly = Anomaly(run_id="r", anomaly="nan", severity="critical", message="NaN")
    with qtbot.assertNotEmitted(bridge.anomaly):
        bridge.feed_events([anomaly], live=False)
    with qtbot.waitSignal(bridge.anomaly) as blocker:
        bridge.feed_line(anomaly.to_json())
    assert blocker.args == [anomaly]


def test_commands_go_through_the_sender_and_are_announced(qtbot) -> None:
    bridge = RunBridge()
    assert not bridge.send(ControlCommand("pause"))  # nobody listening
    sent: list[ControlCommand] = []
    bridge.set_sender(sent.append)
    with qtbot.waitSignal(bridge.commandSent) as blocker:
        assert bridge.send(ControlCommand("stop"))
    assert sent == [ControlCommand("stop")] and blocker.args == [ControlCommand("stop")]
    bridge.set_sender(lambda command: False)  # the supervisor says the worker is gone
    with qtbot.assertNotEmitted(bridge.commandSent):
        assert not bridge.send(ControlCommand("pause"))


def test_reader_replays_a_file_including_an_unterminated_last_line(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    lines = [Progress(run_id="r", step=i, total_steps=3, loss=1.0).to_json() for i in (1, 2, 3)]
    path.write_text(lines[0] + "\ngarbage\n" + lines[1] + "\n" + lines[2], encoding="utf-8")
    bridge = RunBridge()
    steps: list[int] = []
    bridge.events.connect(lambda batch: steps.extend(e.step for e in batch))
    reader = EventFileReader(path, bridge)
    with qtbot.waitSignal(reader.finished, timeout=10000):
        reader.start()
    qtbot.waitUntil(lambda: steps == [1, 2, 3])


def test_reader_follows_a_growing_file_until_the_worker_is_gone(qtbot, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(Progress(run_id="r", step=1, total_steps=3).to_json() + "\n", encoding="utf-8")
    bridge = RunBridge()
    alive = {"worker": True}
    live_steps: list[int] = []
    bridge.progress.connect(lambda event: live_steps.append(event.step))
    reader = EventFileReader(path, bridge, follow=True, alive=lambda: alive["worker"])
    try:
        with qtbot.waitSignal(reader.caughtUp, timeout=10000):
            reader.start()
        with path.open("a", encoding="utf-8") as handle:
            handle.write(Progress(run_id="r", step=2, total_steps=3).to_json() + "\n")
        qtbot.waitUntil(lambda: live_steps == [2], timeout=10000)  # history (step 1) raised no live signal
        with qtbot.waitSignal(bridge.workerExited, timeout=10000) as blocker:
            alive["worker"] = False
        assert blocker.args == [-1]
    finally:
        reader.stop()
