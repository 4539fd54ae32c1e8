"""The preference-tuning rules (DPO, ORPO, KTO): collapsing margins, reward accuracy at chance and drift from
the reference model, on seeded streams shaped like TRL's logs (a healthy one modelled on a real tiny-model DPO
run: margin 0 at step 1, rising; accuracy climbing from a coin flip). Each rule fires on its failure, never on
a healthy run, never on SFT, and its finding is acted on through the recovery policies."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from studio.engine.anomalies import AnomalyGuard, AnomalyMonitor, RecoveryState, StepMetrics, Thresholds, decide
from studio.engine.anomalies.summary import summarize_run
from studio.engine.events import Anomaly, Completed, Event, Recovery

PREFERENCE_KINDS = {"margin_collapse", "accuracy_at_chance", "kl_drift"}
STATE = RecoveryState(lr=5e-6, max_grad_norm=1.0, micro_batch=4, accumulation=1)


@dataclass
class PrefStream:
    """Per-step TRL readings (index i is step i+1), editable to inject a failure."""

    margin: np.ndarray
    accuracy: np.ndarray
    chosen: np.ndarray
    kl: np.ndarray | None = None

    def metrics(self, i: int) -> StepMetrics:
        return StepMetrics(
            step=i + 1, loss=0.69 - 0.1 * min(1.0, i / 300), grad_norm=1.0, lr=5e-6,
            reward_margin=float(self.margin[i]), reward_accuracy=float(self.accuracy[i]),
            reward_chosen=float(self.chosen[i]), kl=None if self.kl is None else float(self.kl[i]),
        )

    def replay(self, monitor: AnomalyMonitor, start: int = 0, stop: int | None = None) -> list:
        found = []
        for i in range(start, len(self.margin) if stop is None else stop):
            found += monitor.observe_step(self.metrics(i))
        return found


def healthy(seed: int = 0, steps: int = 800, tau: float = 80.0, peak: float = 2.0, pairs: int = 4,
            kto: bool = False) -> PrefStream:
    """Margin rising from 0 towards `peak` with batch noise, accuracy a binomial of `pairs` whose chance of
    favouring the chosen answer climbs from 0.5 to 0.95, chosen reward rising a little, KTO's KL a few nats."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    rise = 1 - np.exp(-t / tau)
    margin = peak * rise + rng.normal(0, 0.15 + 0.2 * rise, steps)
    margin[0] = 0.0
    accuracy = rng.binomial(pairs, 0.5 + 0.45 * rise) / pairs
    accuracy[0] = 0.0  # TRL counts the ties of step 1 as wrong
    chosen = 0.5 * peak * rise + rng.normal(0, 0.1, steps)
    kl = np.abs(2.0 * rise + rng.normal(0, 0.8, steps)) if kto else None
    return PrefStream(margin, accuracy, chosen, kl)


def kinds(findings) -> list[str]:
    """The preference findings (the streams' made-up loss is not what these tests are about)."""
    return [f.kind for f in findings if f.kind in PREFERENCE_KINDS]


# ---- healthy runs and SFT: silence -------------------------------------------------------------------------


@pytest.mark.parametrize("objective", ["dpo", "orpo", "kto"])
@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("tau", [30.0, 80.0, 150.0])
def test_a_healthy_preference_run_raises_nothing(objective, seed, tau):
    stream = healthy(seed, tau=tau, kto=objective == "kto")
    assert kinds(stream.replay(AnomalyMonitor(objective=objective))) == []


@pytest.mark.parametrize("seed", range(20))
def test_noisy_margins_around_zero_are_no_collapse(seed):
    """A run that never separated the answers: its margin wanders around zero, batch by batch."""
    stream = healthy(seed)
    stream.margin[:] = np.random.default_rng(seed).normal(0.0, 0.3, len(stream.margin))
    assert "margin_collapse" not in kinds(stream.replay(AnomalyMonitor(objective="dpo")))


def test_preference_rules_are_off_for_sft_whatever_the_logs_hold():
    broken = healthy()
    broken.margin[:] = 0.0
    broken.accuracy[:] = 0.5
    broken.chosen[:] = -5.0
    assert kinds(broken.replay(AnomalyMonitor())) == []  # the default is SFT
    assert kinds(broken.replay(AnomalyMonitor(objective="sft"))) == []
    assert {"accuracy_at_chance"} <= set(kinds(broken.replay(AnomalyMonitor(objective="dpo"))))


def test_switching_to_the_same_objective_keeps_what_the_detectors_saw():
    monitor = AnomalyMonitor(objective="dpo")
    detectors = list(monitor.preference_detectors)
    monitor.use_objective("dpo", 0.1)  # the Trainer rebuilt after a rollback: same run, same baseline
    assert monitor.preference_detectors == detectors
    monitor.use_objective("sft")
    assert monitor.preference_detectors == [] and not set(detectors) & set(monitor.step_detectors)


# ---- margins collapsing -------------------------------------------------------------------------------------


def test_a_margin_that_rose_then_fell_to_zero_is_a_collapse_and_rolls_back():
    stream = healthy(1)
    stream.margin[300:] = np.random.default_rng(1).normal(0.1, 0.15, 500)  # lost what it had learned
    found = [f for f in stream.replay(AnomalyMonitor(objective="dpo")) if f.kind == "margin_collapse"]
    first = found[0]
    assert first.evidence["pattern"] == "collapsed" and first.severity == "critical"
    assert 300 < first.step <= 330 and first.evidence["peak_margin"] > 1.5
    assert "collapsed" in first.message and "learning rate" in first.message
    decision = decide(first, "auto", STATE)
    assert [a.kind for a in decision.actions] == ["rollback_and_halve_lr"] and decision.checkpoint_now is False
    asked = decide(first, "ask", STATE)
    assert asked.offer == ["accept", "rollback", "lower_lr", "stop", "ignore"]


def test_a_margin_below_zero_after_warmup_means_the_rejected_answers_are_preferred():
    stream = healthy(2)
    stream.margin[:] = np.random.default_rng(2).normal(-0.4, 0.2, len(stream.margin))
    [first, *_] = [f for f in stream.replay(AnomalyMonitor(objective="orpo")) if f.kind == "margin_collapse"]
    assert first.evidence["pattern"] == "negative" and "rejected answers above the chosen" in first.message
    assert first.step < 60


def test_a_margin_that_keeps_falling_slows_down_first_then_rolls_back():
    stream = healthy(3)
    stream.margin[300:] = np.linspace(2.0, 0.9, 500) + np.random.default_rng(3).normal(0, 0.1, 500)
    found = [f for f in stream.replay(AnomalyMonitor(objective="kto")) if f.kind == "margin_collapse"]
    first = found[0]
    assert first.evidence["pattern"] == "falling" and first.severity == "warning"
    assert first.evidence["smoothed_margin"] <= first.evidence["peak_margin"] / 2
    [lower] = decide(first, "auto", STATE).actions
    assert lower.kind == "lower_lr" and lower.params["new_lr"] == pytest.approx(2.5e-6)
    again = decide(first, "auto", STATE.seen("margin_collapse"))
    assert [a.kind for a in again.actions] == ["rollback_and_halve_lr"]


def test_a_rolled_back_collapse_is_judged_again_on_the_replayed_steps():
    stream = healthy(4)
    stream.margin[300:] = 0.0
    monitor = AnomalyMonitor(objective="dpo")
    first = [f for f in stream.replay(monitor, stop=340) if f.kind == "margin_collapse"]
    assert first
    again = [f for f in stream.replay(monitor, start=250, stop=340) if f.kind == "margin_collapse"]  # rewinds
    assert [f.step for f in again] == [f.step for f in first]


# ---- accuracy stuck at a coin flip -------------------------------------------------------------------------


def test_accuracy_at_a_coin_flip_after_warmup_is_reported_then_the_run_is_stopped():
    stream = healthy(5)
    rng = np.random.default_rng(5)
    stream.accuracy[:] = rng.binomial(4, 0.5, len(stream.accuracy)) / 4
    stream.margin[:] = rng.normal(0.0, 0.3, len(stream.margin))  # noisy, no direction
    events: list[Event] = []
    guard = AnomalyGuard("run", events.append, "auto", STATE, AnomalyMonitor(objective="dpo"))
    decisions = [d for i in range(350) for d in guard.observe_step(stream.metrics(i))]
    anomalies = [e for e in events if isinstance(e, Anomaly) and e.anomaly == "accuracy_at_chance"]
    assert [a.step for a in anomalies] == [200, 300]  # 100 warm-up readings, then whole windows
    first, second = anomalies
    assert abs(first.evidence["mean_accuracy"] - 0.5) < 0.1 and first.evidence["flat"] is False
    assert "coin flip" in first.message and "learning rate that is too low" in first.message
    assert first.actions == [] and first.extra["checkpoint_now"] is True
    advice = " ".join(first.extra["advice"])
    assert "learning rate" in advice and "beta" in advice and "rejected" in advice
    assert second.actions == ["stop_training"]
    assert [a.kind for a in guard.take_pending()] == ["stop_training"]
    assert len([d for d in decisions if d.actions]) == 1


def test_margins_near_zero_mean_nothing_is_learned_even_at_full_accuracy():
    """A learning rate far too low: margins of 1e-5 that TRL's sign-only accuracy reads as 100%."""
    stream = healthy(6)
    stream.margin[:] = 1e-5
    stream.accuracy[:] = 1.0
    stream.chosen[:] = 1e-5
    [first, *_] = [f for f in stream.replay(AnomalyMonitor(objective="dpo")) if f.kind == "accuracy_at_chance"]
    assert first.evidence["flat"] is True and first.step == 200
    assert "barely told the chosen and rejected answers apart" in first.message


def test_identical_answers_tie_and_are_reported_too():
    stream = healthy(7)
    stream.margin[:] = 0.0
    stream.accuracy[:] = 0.0  # ties count as wrong
    assert "accuracy_at_chance" in kinds(stream.replay(AnomalyMonitor(objective="kto")))


def test_accuracy_that_climbs_slowly_is_not_a_coin_flip():
    stream = healthy(8, tau=150.0, peak=0.6)
    assert "accuracy_at_chance" not in kinds(stream.replay(AnomalyMonitor(objective="dpo")))


# ---- drifting away from the reference ----------------------------------------------------------------------


def test_chosen_answers_pushed_down_while_the_margin_rises_is_drift_in_dpo():
    stream = healthy(9)
    t = np.arange(len(stream.chosen))
    stream.chosen[:] = -3.0 * (1 - np.exp(-t / 150))  # beta 0.1: 30 nats below the reference at the end
    found = [f for f in stream.replay(AnomalyMonitor(objective="dpo", beta=0.1)) if f.kind == "kl_drift"]
    first = found[0]
    assert first.evidence["chosen_logratio"] <= -20 and first.evidence["smoothed_margin"] > 0
    assert "making both answers unlikely" in first.message
    decision = decide(first, "auto", STATE)
    assert [a.kind for a in decision.actions] == ["lower_lr"] and decision.checkpoint_now is False
    assert "higher beta (now 0.1, try 0.2)" in decision.advice[0]
    again = decide(first, "auto", STATE.seen("kl_drift"))
    assert [a.kind for a in again.actions] == ["rollback_and_halve_lr"]


def test_drift_is_measured_against_the_runs_own_beta():
    stream = healthy(10)
    stream.chosen[:] = -3.0  # 30 nats at beta 0.1, but only 6 at beta 0.5
    assert "kl_drift" in kinds(stream.replay(AnomalyMonitor(objective="dpo", beta=0.1)))
    assert "kl_drift" not in kinds(stream.replay(AnomalyMonitor(objective="dpo", beta=0.5)))


def test_ktos_growing_kl_is_drift():
    stream = healthy(11, kto=True)
    stream.kl[400:] = np.linspace(3.0, 25.0, 400)
    [first, *_] = [f for f in stream.replay(AnomalyMonitor(objective="kto")) if f.kind == "kl_drift"]
    assert first.evidence["kl"] >= 10 and "KL" in first.message and first.step > 400


def test_orpo_has_no_reference_so_no_drift_rule():
    stream = healthy(12)
    stream.chosen[:] = -5.0
    assert "kl_drift" not in kinds(stream.replay(AnomalyMonitor(objective="orpo")))


# ---- the record ---------------------------------------------------------------------------------------------


def test_the_summary_names_the_preference_problems_and_distrusts_an_unfixed_collapse():
    stream = healthy(13)
    stream.margin[300:] = 0.0
    events: list[Event] = []
    guard = AnomalyGuard("run", events.append, "off", STATE, AnomalyMonitor(objective="dpo"))
    for i in range(len(stream.margin)):
        guard.observe_step(stream.metrics(i))
    summary = summarize_run([*events, Completed(run_id="run", step=800)])
    assert "lost the preference it had learned" in summary.headline and not summary.trustworthy
    fixed = [*events, Recovery(run_id="run", action="rollback_and_halve_lr", message="rolled back", step=320),
             Completed(run_id="run", step=800)]
    assert "recovered" in summarize_run(fixed).headline


def test_the_thresholds_are_documented_defaults():
    t = Thresholds()
    assert (t.margin_collapse_frac, t.accuracy_band, t.drift_chosen_nats, t.drift_kl_nats) == (0.25, 0.1, 20.0, 10.0)
    assert t.accuracy_warmup_steps + t.accuracy_window == 200
