"""Preference training on the dashboard: a real DPO run of the tiny model shows how often and how strongly
the chosen answer wins; an SFT run shows no such charts and does not keep redrawing for them."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.events import Progress
from studio.monitor.state import RunStatus
from tests.engine.training.test_preference import SETTINGS, write_pairs

SLOW = 240_000  # ms: loading even the tiny model can take a while on a busy 2-core machine


def test_a_dpo_run_shows_reward_accuracy_and_margin(qtbot, dashboard, tiny_model_dir: Path, tmp_path: Path):
    data = write_pairs(tmp_path / "pairs.jsonl")
    config = TrainConfig.from_dict({**SETTINGS, "base_model": str(tiny_model_dir), "dataset_path": str(data),
                                    "objective": "dpo", "max_steps": 6, "checkpoint_every_steps": 100})
    dashboard.start_run(config)
    qtbot.waitUntil(lambda: dashboard.state.status is RunStatus.COMPLETED, timeout=SLOW)
    dashboard.charts.redraw()

    charts = dashboard.charts
    assert charts.reward_accuracy_plot.isVisible() and charts.reward_margin_plot.isVisible()
    assert charts.reward_legend.isVisible() and "coin flip" in charts.reward_legend.text()
    steps, accuracy = charts.plotted("reward_accuracy")
    _steps, margin = charts.plotted("reward_margin")
    assert len(steps) >= 3 and all(0.0 <= value <= 1.0 for value in accuracy)
    assert len(margin) == len(accuracy)
    assert steps == sorted(steps) and steps[-1] <= 6


def test_an_sft_run_has_no_preference_charts_and_no_idle_redraws(qtbot, dashboard, recorded_run_dir: Path):
    with qtbot.waitSignal(dashboard.historyLoaded, timeout=20000):
        dashboard.open_run(recorded_run_dir)
    charts = dashboard.charts
    assert not charts.reward_accuracy_plot.isVisible() and not charts.reward_legend.isVisible()
    for _ in range(20):  # every chart is drawn: further ticks have nothing to do
        charts.redraw_if_changed()
    settled = charts.redraw_count
    for _ in range(10):
        charts.redraw_if_changed()
    assert charts.redraw_count == settled


def test_rewards_arriving_later_reveal_the_charts(qtbot, dashboard):
    charts = dashboard.charts
    for step in range(1, 4):
        dashboard.buffers.apply(Progress(run_id="r", step=step, total_steps=10, loss=1.0 / step,
                                         reward_margin=0.1 * step, reward_accuracy=0.5 + 0.1 * step))
    charts.redraw()
    assert charts.reward_accuracy_plot.isVisible()
    steps, accuracy = charts.plotted("reward_accuracy")
    assert steps == [1.0, 2.0, 3.0] and accuracy == pytest.approx([0.6, 0.7, 0.8])
