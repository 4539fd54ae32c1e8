"""Detectors on synthetic streams: silence on healthy runs, the right finding at the right step on faults."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from studio.engine.anomalies import AnomalyMonitor, EvalMetrics, StepMetrics, Thresholds


def kinds(findings):
    return [f.kind for f in findings]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(
    ("noise", "multiplicative"), [(0.02, False), (0.1, False), (0.2, False), (0.15, True)]
)
def test_a_normal_noisy_run_raises_nothing(make_stream, seed, noise, multiplicative):
    stream = make_stream(seed=seed, noise=noise, multiplicative=multiplicative, gpu=True)
    monitor = AnomalyMonitor()
    assert stream.replay(monitor) == []
    assert monitor.history == []
    assert monitor.best_eval is not None and monitor.best_eval.step == 2000


def test_nan_loss_is_reported_at_its_step(make_stream):
    stream = make_stream(seed=3)
    stream.loss[699] = math.nan
    [finding] = stream.replay()
    assert (finding.kind, finding.severity, finding.step) == ("nan", "critical", 700)
    assert finding.evidence["loss"] == "NaN"
    assert "step 700" in finding.message and "invalid number" in finding.message
    json.dumps(finding.evidence, allow_nan=False)


def test_infinite_gradient_is_reported_even_during_warmup(make_stream):
    stream = make_stream(seed=4)
    stream.grad_norm[2] = math.inf
    [finding] = stream.replay()
    assert (finding.kind, finding.step, finding.evidence["grad_norm"]) == ("nan", 3, "Infinity")
    assert "gradient size" in finding.message


def test_nan_every_step_is_reported_once_per_cooldown_and_again_after_a_rollback(make_stream):
    stream = make_stream(seed=5, steps=400)
    stream.loss[99:200] = math.nan  # steps 100..200
    monitor = AnomalyMonitor()
    found = stream.replay(monitor)
    assert [f.step for f in found] == [100, 150, 200]
    # the worker rolls back to the checkpoint at step 50: steps replay from 51 and the trouble repeats
    again = monitor.observe_step(StepMetrics(step=60, loss=math.nan))
    assert kinds(again) == ["nan"]
    assert len(monitor.history) == 4


def test_nan_eval_loss_is_reported():
    monitor = AnomalyMonitor()
    [finding] = monitor.observe_eval(EvalMetrics(step=40, eval_loss=math.inf))
    assert (finding.kind, finding.step, finding.evidence["eval_loss"]) == ("nan", 40, "Infinity")


def test_loss_spike_is_reported_with_its_robust_z_score(make_stream):
    stream = make_stream(seed=6, noise=0.05)
    stream.loss[899] = 5 * stream.clean_loss[899]
    [finding] = stream.replay()
    assert (finding.kind, finding.severity, finding.step) == ("loss_spike", "warning", 900)
    ev = finding.evidence
    assert ev["loss"] == pytest.approx(stream.loss[899])
    assert ev["median"] == pytest.approx(stream.clean_loss[899], rel=0.05)
    assert ev["robust_z"] >= Thresholds().spike_z
    assert f"{ev['loss']:.3g}" in finding.message and "step 900" in finding.message


def test_no_spike_alarm_before_warmup(make_stream):
    stream = make_stream(seed=7, steps=300)
    stream.loss[4] = 2.5 * stream.loss[:4].max()  # odd, but early readings are too few to judge it
    assert stream.replay() == []


def test_a_blow_up_is_a_spike_even_during_warmup(make_stream):
    """An exploding learning rate can multiply the loss in the first steps; tripling the highest reading so
    far is never a normal start."""
    stream = make_stream(seed=7, steps=300)
    stream.loss[4] = 50.0
    [finding] = stream.replay()
    assert (finding.kind, finding.step) == ("loss_spike", 5)
    assert finding.evidence["highest"] == pytest.approx(stream.loss[:4].max())
    assert "blowing up" in finding.message and "50" in finding.message


def test_sustained_rise_is_reported_as_divergence_not_as_spikes(make_stream):
    stream = make_stream(seed=8, noise=0.05, steps=1400)
    ramp = np.linspace(1.0, 3.0, 200)
    stream.loss[1000:1200] *= ramp  # steps 1001..1200: loss climbs to three times its level
    stream.loss[1200:] *= 3.0
    found = stream.replay(evals=False)
    assert kinds(found)[0] == "divergence"
    divergence = found[0]
    assert 1050 < divergence.step < 1150
    ev = divergence.evidence
    assert ev["best_step"] <= 1001 and ev["rise"] >= Thresholds().divergence_rise
    assert ev["rising_since_step"] > 1000
    assert "diverging" in divergence.message
    assert "loss_spike" not in kinds(found)


def test_gradient_explosion_is_reported_against_the_running_median(make_stream):
    stream = make_stream(seed=9)
    stream.grad_norm[799] = 50 * np.median(stream.grad_norm[700:799])
    [finding] = stream.replay()
    assert (finding.kind, finding.step) == ("grad_explosion", 800)
    assert finding.evidence["ratio"] >= 10 and finding.evidence["lr"] == 2e-4


def test_overfitting_needs_rising_eval_and_falling_train_loss():
    monitor = AnomalyMonitor()
    evals = [2.0, 1.7, 1.5, 1.4, 1.45, 1.5, 1.6]
    train = [2.1, 1.8, 1.5, 1.3, 1.2, 1.1, 1.0]
    found = []
    for i, (e, tr) in enumerate(zip(evals, train, strict=True)):
        found += monitor.observe_eval(EvalMetrics(step=50 * (i + 1), eval_loss=e, train_loss=tr))
    [finding] = found
    assert (finding.kind, finding.severity, finding.step) == ("overfitting", "warning", 350)
    assert finding.evidence["best_step"] == 200 and finding.evidence["best_eval_loss"] == 1.4
    assert finding.evidence["eval_losses"] == [1.4, 1.45, 1.5, 1.6]
    assert "step 200" in finding.message


def test_rising_eval_with_rising_train_loss_is_not_overfitting():
    monitor = AnomalyMonitor()
    for i, e in enumerate([1.4, 1.5, 1.6, 1.7]):
        assert (
            monitor.observe_eval(EvalMetrics(step=50 * (i + 1), eval_loss=e, train_loss=1.0 + 0.1 * i)) == []
        )


def test_overfitting_uses_the_monitors_own_train_loss_when_none_is_given(make_stream):
    stream = make_stream(seed=10, noise=0.02, steps=1000)
    monitor = AnomalyMonitor()
    found = []
    for i in range(stream.steps):
        found += monitor.observe_step(stream.metrics(i))
        if (i + 1) % 100 == 0:
            eval_loss = 2.0 - 0.1 * (i // 100) if i < 600 else 1.5 + 0.1 * (i // 100)
            found += monitor.observe_eval(EvalMetrics(step=i + 1, eval_loss=eval_loss))
    assert [(f.kind, f.step) for f in found] == [("overfitting", 900)]
    assert found[0].evidence["best_step"] == 600


def test_plateau_is_reported_as_info_after_a_window_without_improvement(make_stream):
    stream = make_stream(seed=11, noise=0.05, steps=1600)
    stream.loss[500:] = stream.clean_loss[499] + np.random.default_rng(1).normal(0, 0.05, 1100)
    found = stream.replay(evals=False)
    assert kinds(found) and set(kinds(found)) == {"plateau"}
    first = found[0]
    assert first.severity == "info"
    assert 800 <= first.step <= 1100
    assert first.evidence["steps_without_improvement"] >= Thresholds().plateau_window


@pytest.mark.parametrize(
    ("field", "value", "severity", "resource"),
    [
        ("ram_frac", 0.95, "warning", "ram"),
        ("gpu_mem_frac", 0.99, "critical", "gpu"),
    ],
)
def test_memory_pressure(make_stream, field, value, severity, resource):
    stream = make_stream(seed=12, steps=500, gpu=True)
    getattr(stream, field)[299] = value
    [finding] = stream.replay()
    assert (finding.kind, finding.severity, finding.step) == ("memory_pressure", severity, 300)
    assert finding.evidence["resource"] == resource and finding.evidence["fraction"] == value
    assert f"{value * 100:.0f}%" in finding.message


def test_throughput_collapse_after_several_slow_steps(make_stream):
    stream = make_stream(seed=13, steps=900)
    stream.tokens_per_s[599:] *= 0.3  # from step 600 on
    [finding] = stream.replay()
    assert (finding.kind, finding.severity) == ("throughput_collapse", "warning")
    assert finding.step == 600 + Thresholds().throughput_patience - 1
    assert finding.evidence["since_step"] == 600
    assert 0.2 < finding.evidence["ratio"] < 0.4
    assert "throttling" in finding.message and "swapping" in finding.message


def test_isolated_slow_steps_are_normal(make_stream):
    stream = make_stream(seed=14, steps=600)
    stream.tokens_per_s[99::100] = 5.0  # an evaluation every 100 steps stalls one step
    assert stream.replay() == []


def test_findings_fit_in_an_event():
    monitor = AnomalyMonitor()
    for step in range(1, 40):
        monitor.observe_step(StepMetrics(step=step, loss=2.0 + 0.01 * (step % 3), grad_norm=1.0))
    findings = monitor.observe_step(StepMetrics(step=40, loss=np.float32(40.0), grad_norm=np.float64(500.0)))
    assert set(kinds(findings)) == {"loss_spike", "grad_explosion"}
    for finding in findings:
        json.dumps(finding.evidence, allow_nan=False)


readings = st.one_of(
    st.none(), st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**400), 10**400)
)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(readings, readings, readings, readings, readings, readings), max_size=120),
    st.lists(st.tuples(st.floats(allow_nan=True, allow_infinity=True), readings), max_size=8),
)
def test_detectors_never_raise_on_arbitrary_readings(rows, evals):
    monitor = AnomalyMonitor(
        Thresholds(
            warmup_steps=3,
            spike_window=5,
            smooth_window=3,
            grad_window=5,
            plateau_window=10,
            plateau_smooth_window=4,
            throughput_window=5,
            divergence_patience=2,
            cooldown_steps=2,
        )
    )
    for step, (loss, grad, lr, tps, gpu, ram) in enumerate(rows):
        for finding in monitor.observe_step(StepMetrics(step % 50, loss, grad, lr, tps, gpu, ram)):
            assert finding.severity in {"info", "warning", "critical"} and finding.message
            json.dumps(finding.evidence, allow_nan=False)
    for step, (eval_loss, train_loss) in enumerate(evals):
        for finding in monitor.observe_eval(EvalMetrics(step * 10, eval_loss, train_loss)):
            json.dumps(finding.evidence, allow_nan=False)
