""""Hardest examples so far" on the dashboard, filled from the worker's `hardest` events through the bridge,
live and when a run is rebuilt from its record."""

from __future__ import annotations

from studio.engine.events import HardestExamples

EXAMPLES = [
    {"fingerprint": "fp1", "loss": 7.25, "tokens": 12, "preview": "user What is 2 plus 2? assistant Bananas."},
    {"fingerprint": "fp2", "loss": 2.5, "tokens": 9, "preview": "user What is 3 plus 1? assistant 4, I think."},
    {"fingerprint": "fp3", "loss": 1.125, "tokens": 8, "preview": "user What is 1 plus 1? assistant 2."},
]


def hardest(step: int, examples: list[dict] = EXAMPLES) -> HardestExamples:
    return HardestExamples(run_id="r", step=step, split="eval", examples=examples)


def rows(panel) -> list[list[str]]:
    return [[panel.table.item(r, c).text() for c in range(3)] for r in range(panel.table.rowCount())]


def test_panel_fills_from_a_live_event_and_the_latest_list_replaces_the_last(dashboard, qtbot):
    panel = dashboard.hardest
    assert not panel.isVisible()  # nothing to show before the first evaluation
    with qtbot.waitSignal(dashboard.bridge.hardest) as signalled:
        dashboard.bridge.feed_line(hardest(20).to_json())
    assert signalled.args[0].step == 20
    assert panel.isVisible()
    assert rows(panel) == [["7.2500", "12", EXAMPLES[0]["preview"]], ["2.5000", "9", EXAMPLES[1]["preview"]],
                           ["1.1250", "8", EXAMPLES[2]["preview"]]]
    assert panel.caption.text().startswith("Step 20: the 3 held-out examples the model fits worst.")
    dashboard.bridge.feed_line(hardest(40, EXAMPLES[1:]).to_json())
    assert panel.step == 40 and len(rows(panel)) == 2 and rows(panel)[0][0] == "2.5000"


def test_panel_is_rebuilt_from_history_and_cleared_for_the_next_run(dashboard, recorded_run_dir, qtbot):
    with (recorded_run_dir / "events.jsonl").open("a", encoding="utf-8") as record:
        record.write(hardest(40).to_json() + "\n")
    with qtbot.waitSignal(dashboard.historyLoaded, timeout=20000), qtbot.assertNotEmitted(dashboard.bridge.hardest):
        dashboard.open_run(recorded_run_dir)
    assert dashboard.hardest.isVisible() and dashboard.hardest.step == 40
    other = recorded_run_dir.parent / "run-without-events"
    other.mkdir()
    with qtbot.waitSignal(dashboard.historyLoaded, timeout=20000):
        dashboard.open_run(other)  # the next run: nothing to show yet
    assert not dashboard.hardest.isVisible() and dashboard.hardest.table.rowCount() == 0


def test_the_system_prompt_every_example_starts_with_is_left_out_of_the_previews(dashboard):
    system = "system You are Pip, a cheerful assistant who answers sums. "
    dashboard.bridge.feed_line(hardest(5, [{**e, "preview": system + e["preview"]} for e in EXAMPLES]).to_json())
    shown = [row[2] for row in rows(dashboard.hardest)]
    assert shown == [f"… {e['preview']}" for e in EXAMPLES]  # "user What is": the last shared words stay
    assert dashboard.hardest.table.item(0, 2).toolTip() == system + EXAMPLES[0]["preview"]  # in full on hover
