"""Rebuilding a past run from its events.jsonl reproduces the charts, progress and completion card."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.engine.events import Anomaly, Checkpoint, Completed, Eval, Event, Progress
from studio.monitor.charts import PROBLEM_FACTOR
from studio.monitor.state import RunStatus


def test_replaying_a_recorded_run_reproduces_the_charts(qtbot, dashboard, recorded_run_dir: Path,
                                                        recorded: list[Event]) -> None:
    events = recorded
    progress = [e for e in events if isinstance(e, Progress)]
    evals = [e for e in events if isinstance(e, Eval)]
    checkpoints = [e.step for e in events if isinstance(e, Checkpoint)]
    assert len(progress) == 40 and evals and checkpoints  # the recording is what the test thinks it is

    with qtbot.waitSignal(dashboard.historyLoaded, timeout=20000):
        dashboard.open_run(recorded_run_dir)

    charts = dashboard.charts
    assert charts.plotted("loss_raw") == ([float(e.step) for e in progress], [e.loss for e in progress])
    assert charts.plotted("eval_loss") == ([float(e.step) for e in evals], [e.eval_loss for e in evals])
    assert charts.plotted("lr")[1] == [e.lr for e in progress]
    assert charts.plotted("tokens_per_s")[1] == [e.tokens_per_s for e in progress]
    smoothed = charts.plotted("loss")[1]
    assert len(smoothed) == 40 and smoothed[0] == pytest.approx(progress[0].loss)
    assert charts.marker_positions() == [float(step) for step in checkpoints]
    baseline = dashboard.buffers.baseline_loss
    assert charts.zone_bounds()["watch"] == pytest.approx((baseline, baseline * PROBLEM_FACTOR))
    assert charts.redraw_count <= 3  # one redraw for the whole history, not one per event

    state = dashboard.state
    assert state.status is RunStatus.COMPLETED and state.step == 40
    completed = next(e for e in events if isinstance(e, Completed))
    assert dashboard.progress.step.text() == "40 of 40" and dashboard.progress.ring.fraction == 1.0
    assert dashboard.summary.isVisible()
    assert dashboard.summary.facts["final_eval"].text() == f"{completed.metrics['eval_loss']:.3f}"
    assert dashboard.summary.facts["anomalies"].text() == "0"
    assert dashboard.controls.enabled_buttons() == set()  # a finished run takes no commands
    assert not dashboard.bridge.can_send


def test_smoothing_slider_redraws_the_smoothed_curve_only(qtbot, dashboard, recorded_run_dir: Path) -> None:
    with qtbot.waitSignal(dashboard.historyLoaded, timeout=20000):
        dashboard.open_run(recorded_run_dir)
    raw_before = dashboard.charts.plotted("loss_raw")
    smooth_before = dashboard.charts.plotted("loss")[1]
    dashboard.charts.smoothing.setValue(0)
    dashboard.charts.redraw_if_changed()
    assert dashboard.charts.plotted("loss")[1] == raw_before[1] != smooth_before
    assert dashboard.charts.plotted("loss_raw") == raw_before


def test_a_run_that_ends_mid_way_is_shown_as_interrupted(qtbot, dashboard, recorded_run_dir: Path,
                                                          recorded: list[Event]) -> None:
    events = recorded
    cut = next(i for i, e in enumerate(events) if isinstance(e, Progress) and e.step == 20)
    extra = Anomaly(run_id=events[0].run_id, anomaly="loss_spike", severity="warning", step=20,
                    message="The loss jumped.", evidence={"loss": 9.1, "median": 3.0}, actions=["rollback"])
    lines = [e.to_json() for e in events[: cut + 1]] + [extra.to_json()]
    (recorded_run_dir / "events.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with qtbot.waitSignal(dashboard.historyLoaded, timeout=20000):
        dashboard.open_run(recorded_run_dir)
    assert dashboard.state.status is RunStatus.INTERRUPTED
    assert dashboard.controls.enabled_buttons() == {"resume"}
    assert len(dashboard.alerts.banners) == 1
    assert all(not b.isEnabled() for b in dashboard.alerts.banners[0].buttons.values())
    assert 20.0 in [line.value() for line in dashboard.charts._markers[0].lines]
