"""Controls follow the reported state; anomaly banners send the right command; recoveries are explained."""

from __future__ import annotations

import pytest

from studio.engine.anomalies import ACTION_LABELS
from studio.engine.control import ControlCommand
from studio.engine.events import Anomaly, Paused, Progress, Recovery, Started
from studio.monitor.controls import ControlsBar
from studio.monitor.state import RunStatus


@pytest.mark.parametrize(("status", "enabled"), [
    (RunStatus.IDLE, set()),
    (RunStatus.STARTING, {"stop"}),
    (RunStatus.RUNNING, {"pause", "pause_release", "stop", "checkpoint"}),
    (RunStatus.PAUSED, {"resume", "pause_release", "stop", "checkpoint"}),
    (RunStatus.RELEASED, {"resume"}),
    (RunStatus.INTERRUPTED, {"resume"}),
    (RunStatus.COMPLETED, set()),
    (RunStatus.STOPPED, set()),
    (RunStatus.FAILED, set()),
])
def test_buttons_follow_the_reported_status(qtbot, status: RunStatus, enabled: set[str]) -> None:
    bar = ControlsBar()
    qtbot.addWidget(bar)
    bar.show()
    bar.set_status(status)
    assert bar.enabled_buttons() == enabled


def test_a_click_waits_for_the_worker_instead_of_guessing(qtbot) -> None:
    bar = ControlsBar()
    qtbot.addWidget(bar)
    bar.show()
    bar.set_status(RunStatus.RUNNING)
    with qtbot.waitSignal(bar.commandRequested) as blocker:
        bar.buttons["pause"].click()
    assert blocker.args == [ControlCommand("pause")]
    assert bar.pending == "pause" and bar.enabled_buttons() == {"stop"} and "Pausing" in bar.note.text()
    bar.set_status(RunStatus.RUNNING)  # no news from the worker yet: still pending
    assert bar.pending == "pause"
    bar.set_status(RunStatus.PAUSED)
    assert bar.pending is None and "resume" in bar.enabled_buttons()
    bar.buttons["checkpoint"].click()
    assert bar.pending == "checkpoint"
    bar.settle("checkpoint")
    assert bar.pending is None


def test_stop_asks_first(qtbot) -> None:
    bar = ControlsBar()
    qtbot.addWidget(bar)
    bar.show()
    bar.set_status(RunStatus.RUNNING)
    bar.confirm_stop = lambda parent: False
    with qtbot.assertNotEmitted(bar.commandRequested):
        bar.buttons["stop"].click()
    bar.confirm_stop = lambda parent: True
    with qtbot.waitSignal(bar.commandRequested) as blocker:
        bar.buttons["stop"].click()
    assert blocker.args == [ControlCommand("stop")]


def _running(dashboard, mode: str) -> list[ControlCommand]:
    sent: list[ControlCommand] = []
    dashboard.bridge.set_sender(sent.append)
    dashboard.bridge.feed_events([
        Started(run_id="r", total_steps=100, config={"anomaly_mode": mode}),
        Progress(run_id="r", step=10, total_steps=100, loss=2.0),
    ])
    return sent


def test_an_anomaly_banner_button_sends_the_chosen_action(qtbot, dashboard) -> None:
    sent = _running(dashboard, "ask")
    notes: list[tuple[str, str]] = []
    dashboard.notifier.notified.connect(lambda title, message: notes.append((title, message)))
    anomaly = Anomaly(run_id="r", anomaly="divergence", severity="critical", step=42,
                      message="The loss has been rising for 20 steps.",
                      evidence={"loss": 3.91, "best_loss": 2.05, "steps_rising": 20},
                      actions=["rollback", "lower_lr", "continue", "stop"])  # "continue" is no answer
    dashboard.bridge.feed_events([anomaly])
    banner = dashboard.alerts.banners[-1]
    assert banner.isVisibleTo(dashboard)
    assert "getting worse" in banner.title.text() and "step 42" in banner.title.text()
    assert "loss 3.91" in banner.evidence.text() and "best loss 2.05" in banner.evidence.text()
    assert list(banner.buttons) == ["rollback", "lower_lr", "stop"]  # only what the worker accepts
    assert [b.text() for b in banner.buttons.values()] == [ACTION_LABELS[k] for k in ("rollback", "lower_lr", "stop")]
    assert notes and notes[0][1] == anomaly.message  # the tray was told too
    with qtbot.waitSignal(dashboard.bridge.commandSent) as blocker:
        banner.buttons["lower_lr"].click()
    expected = ControlCommand("anomaly_action", {"action": "lower_lr", "anomaly": "divergence", "step": 42})
    assert blocker.args == [expected] and sent == [expected]
    assert not any(b.isEnabled() for b in banner.buttons.values())  # one answer per anomaly
    assert "Lower the learning rate" in banner.outcome.text()


def test_worker_anomaly_events_drive_the_buttons(qtbot, dashboard) -> None:
    """The fields the worker writes (studio.engine.anomalies.to_event_fields) decide mode, keys and labels."""
    from studio.engine.anomalies import AnomalyMonitor, RecoveryState, StepMetrics, decide, to_event_fields

    sent = _running(dashboard, "auto")  # the event's own mode wins over the config's
    [finding] = AnomalyMonitor().observe_step(StepMetrics(step=7, loss=float("nan")))
    decision = decide(finding, "ask", RecoveryState(lr=1e-3, max_grad_norm=1.0, micro_batch=2, accumulation=1))
    dashboard.bridge.feed_events([Anomaly(run_id="r", **to_event_fields(finding, decision, "ask"))])
    banner = dashboard.alerts.banners[-1]
    assert list(banner.buttons) == decision.offer and set(decision.offer) <= set(ACTION_LABELS)
    assert banner.buttons["accept"].text() == ACTION_LABELS["accept"]
    with qtbot.waitSignal(dashboard.bridge.commandSent):
        banner.buttons["accept"].click()
    assert sent == [ControlCommand("anomaly_action", {"action": "accept", "anomaly": "nan", "step": 7})]


def test_automatic_mode_explains_what_was_done(qtbot, dashboard) -> None:
    sent = _running(dashboard, "auto")
    dashboard.bridge.feed_events([
        Anomaly(run_id="r", anomaly="nan", severity="critical", step=12, message="The loss became NaN.",
                actions=["rollback_and_halve_lr"]),
        Recovery(run_id="r", action="rollback_and_halve_lr", step=12,
                 message="Rolled back to step 10 and halved the rate.",
                 before={"learning_rate": 2e-4}, after={"learning_rate": 1e-4}),
    ])
    banner = dashboard.alerts.banners[-1]
    assert banner.buttons == {}  # nothing to answer: Studio acts by itself
    assert "What Studio did" in banner.outcome.text() and "halved" in banner.outcome.text()
    assert "learning rate 0.0002 → 0.0001" in banner.outcome.text()
    dashboard.bridge.feed_events([Recovery(run_id="r", action="tighten_grad_clip", step=30, message="Clipping on.")])
    assert "Studio acted" in dashboard.alerts.banners[-1].title.text()
    assert sent == []


def test_pause_reported_by_the_worker_updates_the_buttons(qtbot, dashboard) -> None:
    _running(dashboard, "auto")
    qtbot.waitUntil(lambda: "pause" in dashboard.controls.enabled_buttons())
    dashboard.bridge.feed_events([Paused(run_id="r", step=10)])
    qtbot.waitUntil(lambda: dashboard.controls.enabled_buttons() == {"resume", "pause_release", "stop",
                                                                      "checkpoint"})
    assert "Paused" in dashboard.progress.status.text()
