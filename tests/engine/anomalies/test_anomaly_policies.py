"""Recovery policies: every branch, the OOM retry ladder, the rollback limit, and the event fields."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from studio.engine.anomalies import (
    ACTION_LABELS,
    Finding,
    RecoveryState,
    decide,
    oom_exhausted_error,
    oom_finding,
    plan_oom_retry,
    recovery_event_fields,
    resolve_choice,
    to_event_fields,
)
from studio.engine.errors import ExitCode
from studio.engine.events import Anomaly, Recovery, parse_event


def finding(kind, severity="critical", step=120, **evidence):
    return Finding(
        kind=kind, severity=severity, message=f"{kind} at step {step}", evidence=evidence, step=step
    )


STATE = RecoveryState(lr=2e-4, max_grad_norm=None, micro_batch=4, accumulation=2)


@pytest.mark.parametrize("kind", ["nan", "loss_spike", "divergence"])
def test_damaging_findings_roll_back_and_halve_the_lr(kind):
    decision = decide(finding(kind), "auto", STATE)
    [action] = decision.actions
    assert action.kind == "rollback_and_halve_lr"
    assert action.params["new_lr"] == pytest.approx(1e-4) and action.params["old_lr"] == 2e-4
    assert action.params["to"] == "last_good_checkpoint"
    assert decision.checkpoint_now is False  # the current weights are suspect: never make them "last good"
    after = STATE.after(decision.actions)
    assert (after.lr, after.rollbacks) == (pytest.approx(1e-4), 1)


def test_after_three_rollbacks_studio_recommends_stopping():
    state, taken = STATE, []
    for step in (100, 200, 300, 400):
        decision = decide(finding("divergence", step=step), "auto", state)
        taken.append(decision.actions[0].kind)
        state = state.after(decision.actions)
    assert taken == ["rollback_and_halve_lr"] * 3 + ["stop_training"]
    assert state.rollbacks == 3 and state.lr == pytest.approx(2e-4 / 8)
    final = decide(finding("nan", step=500), "ask", state)
    assert final.offer == ["stop", "ignore"] and final.advice


def test_gradient_explosion_enables_then_tightens_clipping_then_rolls_back():
    first = decide(finding("grad_explosion", "warning"), "auto", STATE)
    [enable] = first.actions
    assert enable.kind == "tighten_grad_clip"
    assert enable.params == {"old_max_grad_norm": None, "new_max_grad_norm": 1.0}
    assert first.checkpoint_now is True
    state = STATE.after(first.actions).seen("grad_explosion")
    assert (state.max_grad_norm, state.clip_tightenings) == (1.0, 1)
    second = decide(finding("grad_explosion", "warning", step=300), "auto", state)
    assert [a.kind for a in second.actions] == ["rollback_and_halve_lr"]
    assert second.checkpoint_now is False  # not the first sighting


def test_clipping_already_on_is_tightened():
    state = RecoveryState(lr=1e-4, max_grad_norm=0.08)
    [action] = decide(finding("grad_explosion", "warning"), "auto", state).actions
    assert action.params["new_max_grad_norm"] == 0.05  # halved, but never below the floor


def test_oom_retry_ladder_keeps_the_effective_batch():
    assert plan_oom_retry(4, 2, attempt=1) == (2, 4)
    assert plan_oom_retry(2, 4, attempt=2) == (1, 8)
    assert plan_oom_retry(1, 8, attempt=3) is None  # nothing left to halve
    assert plan_oom_retry(16, 1, attempt=4) is None  # out of attempts
    assert plan_oom_retry(6, 1, attempt=1) == (3, 2)
    assert plan_oom_retry(3, 1, attempt=1) == (1, 3)


def test_oom_decisions_walk_the_ladder_then_give_up_with_exit_3():
    state, seen = RecoveryState(lr=2e-4, micro_batch=4, accumulation=1), []
    for step in (10, 10, 10):
        decision = decide(
            oom_finding(step, state.micro_batch, state.accumulation, "CUDA out of memory"), "auto", state
        )
        seen.append(
            [
                (a.kind, a.params.get("new_micro_batch"), a.params.get("new_accumulation"))
                for a in decision.actions
            ]
        )
        state = state.after(decision.actions)
    assert seen == [
        [("reduce_batch_for_oom", 2, 2)],
        [("reduce_batch_for_oom", 1, 4)],
        [("stop_training", None, None)],
    ]
    assert state.oom_retries == 2 and decision.advice
    error = oom_exhausted_error(state.micro_batch, state.accumulation, state.oom_retries)
    assert error.exit_code == ExitCode.OUT_OF_MEMORY == 3
    assert 2 <= len(error.actions) <= 3 and "retried 2 time(s)" in error.why


@given(st.integers(1, 4096), st.integers(1, 1024), st.integers(-2, 6))
def test_oom_plan_always_preserves_the_effective_batch(micro, accum, attempt):
    plan = plan_oom_retry(micro, accum, attempt)
    if plan is None:
        assert micro == 1 or not 1 <= attempt <= 3
    else:
        new_micro, new_accum = plan
        assert new_micro * new_accum == micro * accum
        assert 1 <= new_micro <= micro // 2


def test_overfitting_stops_early_and_restores_the_best_checkpoint():
    decision = decide(
        finding("overfitting", "warning", step=350, best_step=200, best_eval_loss=1.4), "auto", STATE
    )
    [action] = decision.actions
    assert action.kind == "early_stop_restore_best"
    assert action.params == {"best_step": 200, "best_eval_loss": 1.4}
    assert decision.checkpoint_now is True


@pytest.mark.parametrize(("resource", "hint"), [("gpu", "smaller batch"), ("ram", "Close other programs")])
def test_memory_pressure_warns_and_checkpoints_once(resource, hint):
    f = finding("memory_pressure", "warning", resource=resource, fraction=0.95)
    decision = decide(f, "auto", STATE)
    assert decision.actions == [] and any(hint in a for a in decision.advice)
    assert decision.checkpoint_now is True
    assert decide(f, "auto", STATE.seen("memory_pressure")).checkpoint_now is False


def test_plateau_and_throughput_are_advice_only():
    plateau = decide(finding("plateau", "info"), "auto", STATE)
    slow = decide(finding("throughput_collapse", "warning"), "auto", STATE)
    assert plateau.actions == [] == slow.actions
    assert any("overheating" in a for a in slow.advice)


def test_off_mode_detects_but_does_nothing():
    decision = decide(finding("nan"), "off", STATE)
    assert (decision.actions, decision.offer, decision.checkpoint_now) == ([], [], False)
    assert decision.proposed[0].kind == "rollback_and_halve_lr"  # still shown as what auto would have done


def test_ask_mode_offers_labelled_choices_and_resolves_each():
    decision = decide(finding("divergence", step=420), "ask", STATE)
    assert decision.actions == []
    assert decision.offer == ["accept", "rollback", "lower_lr", "stop", "ignore"]
    assert all(key in ACTION_LABELS for key in decision.offer)
    assert resolve_choice("accept", decision, STATE) == decision.proposed
    [rollback] = resolve_choice("rollback", decision, STATE)
    assert rollback.kind == "rollback_and_halve_lr" and rollback.params["step"] == 420
    [lower] = resolve_choice("lower_lr", decision, STATE)
    assert lower.kind == "lower_lr" and STATE.after([lower]).lr == pytest.approx(1e-4)
    assert STATE.after([lower]).rollbacks == 0
    assert [a.kind for a in resolve_choice("stop", decision, STATE)] == ["stop_training"]
    assert [a.kind for a in resolve_choice("ignore", decision, STATE)] == ["none"]
    assert [a.kind for a in resolve_choice("nonsense", decision, STATE)] == ["none"]
    warning = decide(finding("plateau", "info"), "ask", STATE)
    assert warning.offer == ["ignore", "stop"]
    assert decide(finding("overfitting", "warning", best_step=1), "ask", STATE).offer == [
        "accept",
        "stop",
        "ignore",
    ]


@pytest.mark.parametrize("mode", ["auto", "ask", "off"])
def test_event_fields_round_trip_through_the_protocol(mode):
    f = finding("nan", loss=float("nan"), step=120)
    decision = decide(f, mode, STATE)
    event = Anomaly(run_id="r1", seq=3, **to_event_fields(f, decision, mode))
    back = parse_event(event.to_json())
    assert isinstance(back, Anomaly)
    assert (back.anomaly, back.severity, back.step, back.evidence["loss"]) == ("nan", "critical", 120, "NaN")
    expected = {"auto": ["rollback_and_halve_lr"], "ask": decision.offer, "off": []}[mode]
    assert back.actions == expected
    assert back.extra["mode"] == mode
    assert back.extra["proposed"][0]["kind"] == "rollback_and_halve_lr"
    if mode == "ask":
        assert back.extra["offer_labels"]["accept"] == "Apply the fix"


def test_recovery_event_fields_split_before_and_after():
    [action] = decide(
        finding("grad_explosion", "warning"), "auto", RecoveryState(lr=1e-4, max_grad_norm=2.0)
    ).actions
    event = Recovery(run_id="r1", **recovery_event_fields(action, step=77))
    back = parse_event(event.to_json())
    assert isinstance(back, Recovery)
    assert (back.action, back.step) == ("tighten_grad_clip", 77)
    assert back.before == {"max_grad_norm": 2.0} and back.after == {"max_grad_norm": 1.0}
    assert "clipping" in back.message
    json.loads(event.to_json())
