"""Metric buffers and run state: plain Python folded from events (no widgets involved)."""

from __future__ import annotations

import math

import pytest

from studio.engine.events import (
    Anomaly,
    Checkpoint,
    Completed,
    Eval,
    Heartbeat,
    Paused,
    Progress,
    Recovery,
    Resumed,
    Started,
)
from studio.monitor.buffers import MetricBuffers, Series, SmoothedSeries
from studio.monitor.state import RunState, RunStatus


def progress(step: int, loss: float | None = 2.0, **kw: object) -> Progress:
    return Progress(run_id="r", step=step, total_steps=100, loss=loss, **kw)


def test_series_grows_past_its_capacity_and_keeps_order() -> None:
    series = Series(capacity=4)
    for i in range(1000):
        series.append(i, i * 2)
    assert len(series) == 1000
    assert series.x[-1] == 999 and series.y[500] == 1000
    assert series.last() == (999.0, 1998.0)


def test_smoothing_is_a_debiased_ema_and_rebuilds_for_a_new_weight() -> None:
    smoothed = SmoothedSeries(0.5)
    for x, y in enumerate([4.0, 2.0]):
        smoothed.push(x, y)
    assert smoothed.y[0] == pytest.approx(4.0)  # debiased: the first point is the first value
    assert smoothed.y[1] == pytest.approx((0.25 * 4 + 0.5 * 2) / 0.75)
    buffers = MetricBuffers(smoothing=0.0)
    for step, loss in enumerate([3.0, 1.0, 2.0], start=1):
        buffers.apply(progress(step, loss))
    assert buffers.smoothed_loss.y.tolist() == [3.0, 1.0, 2.0]
    version = buffers.version
    buffers.set_smoothing(0.9)
    assert buffers.version > version
    assert buffers.smoothed_loss.y[-1] < 3.0 and buffers.smoothed_loss.y[-1] != 2.0


def test_buffers_skip_non_finite_values_and_collect_markers() -> None:
    buffers = MetricBuffers()
    buffers.apply(progress(1, loss=float("nan"), lr=1e-4))
    buffers.apply(progress(2, loss=2.5, tokens_per_s=100.0))
    buffers.apply(Eval(run_id="r", step=2, eval_loss=2.7))
    buffers.apply(Checkpoint(run_id="r", step=2, path="/x"))
    buffers.apply(Anomaly(run_id="r", anomaly="loss_spike", severity="warning", message="m", step=2))
    buffers.apply(Recovery(run_id="r", action="rollback", message="m", step=2))
    assert buffers.series["loss"].x.tolist() == [2.0]
    assert buffers.series["lr"].y.tolist() == [1e-4]
    assert buffers.series["eval_loss"].y.tolist() == [2.7]
    assert [m.kind for m in buffers.markers] == ["checkpoint", "anomaly", "recovery"]
    assert buffers.baseline_loss == 2.5


def test_baseline_is_the_median_of_the_first_losses() -> None:
    buffers = MetricBuffers()
    for step, loss in enumerate([9.0, 3.0, 3.1, 2.9, 3.0, 0.1, 0.1], start=1):
        buffers.apply(progress(step, loss))
    assert buffers.baseline_loss == pytest.approx(3.0)


def test_system_readings_skip_missing_sensors() -> None:
    buffers = MetricBuffers()
    buffers.add_system(1.0, {"cpu_percent": 50.0, "ram_percent": 40.0, "gpu_util_percent": None})
    assert len(buffers.series["cpu_percent"]) == 1 and len(buffers.series["gpu_util_percent"]) == 0


def test_run_state_follows_what_the_worker_reports() -> None:
    state = RunState()
    state.apply(Heartbeat(run_id="r", phase="loading_model", message="Loading the model"))
    assert state.run_id == "r" and state.phase == "Loading the model"
    state.apply(Started(run_id="r", total_steps=10, config={"anomaly_mode": "ask"}))
    assert state.status is RunStatus.STARTING
    state.apply(progress(3, mem={"rss": 1e9, "gpu_total": 8e10}))
    assert state.status is RunStatus.RUNNING and state.step == 3 and state.phase == ""
    assert state.peak_ram_bytes == 1e9 and state.peak_gpu_bytes is None  # totals are not usage
    state.apply(Paused(run_id="r", step=3))
    assert state.status is RunStatus.PAUSED and state.status.alive
    state.apply(Resumed(run_id="r", step=3))
    state.apply(Eval(run_id="r", step=3, eval_loss=1.5))
    state.apply(Eval(run_id="r", step=6, eval_loss=1.7))
    assert (state.best_eval_loss, state.best_eval_step, state.eval_loss) == (1.5, 3, 1.7)
    state.apply(Paused(run_id="r", step=6, released=True))
    assert state.status is RunStatus.RELEASED and not state.status.alive
    state.mark_exited(0)
    assert state.status is RunStatus.RELEASED  # an exit after a clean release changes nothing
    state.apply(Completed(run_id="r", step=10, metrics={"peak_rss": 2e9}))
    assert state.status is RunStatus.COMPLETED and state.fraction == 1.0 and state.peak_ram_bytes == 2e9


def test_a_worker_that_vanishes_mid_run_leaves_an_interrupted_run() -> None:
    state = RunState()
    state.apply(progress(5))
    state.mark_exited(-9)
    assert state.status is RunStatus.INTERRUPTED
    other = RunState()
    other.apply(progress(5))
    other.mark_exited(130)
    assert other.status is RunStatus.STOPPED
    assert math.isclose(other.fraction, 0.05)
