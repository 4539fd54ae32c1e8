"""The guard drives a simulated training loop end to end: detect, decide, act, record, summarise."""

from __future__ import annotations

import math

from studio.engine.anomalies import (
    AnomalyGuard,
    EvalMetrics,
    RecoveryState,
    StepMetrics,
    summarize_run,
)
from studio.engine.events import Anomaly, Completed, Eval, Recovery


def simulate(make_stream, mode, nan_steps=(), choices=()):
    """A toy loop over a synthetic stream that really rewinds on rollback and replays with a lower LR."""
    stream = make_stream(seed=21, noise=0.05, steps=900)
    events = []
    guard = AnomalyGuard("r1", events.append, mode, RecoveryState(lr=2e-4, max_grad_norm=1.0))
    poisoned, checkpoint, step, replies = set(nan_steps), 0, 1, list(choices)
    while step <= stream.steps:
        m = stream.metrics(step - 1)
        if step in poisoned:
            m = StepMetrics(step=step, loss=math.nan, grad_norm=math.nan, lr=guard.state.lr)
        guard.observe_step(m)
        if step % 100 == 0:
            eval_loss = float(stream.clean_loss[step - 1]) + 0.1
            events.append(Eval(run_id="r1", step=step, eval_loss=eval_loss))
            guard.observe_eval(EvalMetrics(step=step, eval_loss=eval_loss))
            checkpoint = step
        if guard.awaiting and replies:
            guard.answer(replies.pop(0))
        next_step = step + 1
        for action in guard.take_pending():
            if action.kind == "rollback_and_halve_lr":
                poisoned.discard(step)  # the bad batch is not met again after the rollback
                guard.applied(action, step, restored_step=checkpoint)
                next_step = checkpoint + 1
            else:
                guard.applied(action, step)
        step = next_step
    events.append(Completed(run_id="r1", step=stream.steps))
    return guard, events


def test_auto_mode_rolls_back_on_nan_and_the_summary_says_it_recovered(make_stream):
    guard, events = simulate(make_stream, "auto", nan_steps=(350, 620))
    anomalies = [e for e in events if isinstance(e, Anomaly)]
    recoveries = [e for e in events if isinstance(e, Recovery)]
    assert [(a.anomaly, a.step) for a in anomalies] == [("nan", 350), ("nan", 620)]
    assert [(r.action, r.step, r.after["restored_step"]) for r in recoveries] == [
        ("rollback_and_halve_lr", 350, 300),
        ("rollback_and_halve_lr", 620, 600),
    ]
    assert recoveries[0].before == {"lr": 2e-4} and recoveries[1].after["lr"] == 5e-5
    assert guard.state.rollbacks == 2 and guard.state.lr == 5e-5
    summary = summarize_run(events)
    assert summary.headline.startswith(
        "Training hit invalid numbers (NaN) twice and recovered; final eval loss"
    )
    assert summary.trustworthy and (summary.anomalies, summary.recoveries) == (2, 2)


def test_ask_mode_waits_for_the_user_and_records_the_answer(make_stream):
    guard, events = simulate(make_stream, "ask", nan_steps=(350,), choices=("rollback",))
    [anomaly] = [e for e in events if isinstance(e, Anomaly)]
    assert anomaly.actions == ["accept", "rollback", "lower_lr", "stop", "ignore"]
    assert anomaly.extra["offer_labels"]["rollback"] == "Go back to the last good checkpoint"
    [recovery] = [e for e in events if isinstance(e, Recovery)]
    assert (recovery.action, recovery.after["restored_step"]) == ("rollback_and_halve_lr", 300)
    assert guard.awaiting == []


def test_ignoring_a_nan_in_ask_mode_leaves_an_untrustworthy_model(make_stream):
    _, events = simulate(make_stream, "ask", nan_steps=(350,), choices=("ignore",))
    [recovery] = [e for e in events if isinstance(e, Recovery)]
    assert recovery.action == "none"
    summary = summarize_run(events)
    assert not summary.trustworthy and "did not recover" in summary.headline


def test_off_mode_reports_and_does_nothing(make_stream):
    guard, events = simulate(make_stream, "off", nan_steps=(350,))
    assert [e.anomaly for e in events if isinstance(e, Anomaly)] == ["nan"]
    assert not [e for e in events if isinstance(e, Recovery)]
    assert guard.state.rollbacks == 0


def test_oom_in_the_guard_plans_retries_and_keeps_the_effective_batch():
    events = []
    guard = AnomalyGuard("r1", events.append, "auto", RecoveryState(lr=1e-4, micro_batch=4, accumulation=4))
    for _ in range(3):
        guard.observe_oom(step=0, error="CUDA out of memory")
        for action in guard.take_pending():
            guard.applied(action, 0)
    kinds = [
        (e.action, e.after.get("micro_batch"), e.after.get("accumulation"))
        for e in events
        if isinstance(e, Recovery)
    ]
    assert kinds == [
        ("reduce_batch_for_oom", 2, 8),
        ("reduce_batch_for_oom", 1, 16),
        ("stop_training", None, None),
    ]
    assert guard.state.micro_batch * guard.state.accumulation == 16


def test_warnings_request_one_checkpoint():
    guard = AnomalyGuard("r1", [].append, "auto", RecoveryState(lr=1e-4))
    guard.observe_step(StepMetrics(step=5, ram_frac=0.95))
    assert guard.take_checkpoint_request() and guard.take_pending() == []
    assert not guard.take_checkpoint_request()  # once
