"""The dashboard's running energy, cost and CO2, the completion card's final figures, and the steps of a
starting run, all from real typed events and machine readings fed the way the sampler and worker do."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.engine.energy import EnergySettings, save_settings
from studio.engine.events import Completed, Event, Heartbeat, Progress, Started
from studio.engine.power_meter import RunEnergy, load_run_energy, save_run_energy
from studio.monitor.state import RunStatus
from studio.monitor.system_stats import SystemSample


def reading(t: float, cpu_power_w: float | None = None) -> SystemSample:
    return SystemSample(t=t, cpu_percent=90.0, ram_percent=40.0, ram_used_bytes=4e9, cpu_power_w=cpu_power_w)


def test_the_running_cost_moves_and_the_summary_keeps_the_final_figures(qtbot, dashboard, recorded: list[Event]):
    save_settings(EnergySettings(0.40, "EUR", 381.0, "DE"))
    cut = next(i for i, e in enumerate(recorded) if isinstance(e, Progress) and e.step == 10)
    dashboard.bridge.feed_events(recorded[: cut + 1])
    costs = []
    for second in range(0, 40, 2):
        dashboard.sampler.sampled.emit(reading(float(second)))
        costs.append(dashboard.energy.labels["Cost"].text())
    assert costs[0] != costs[-1] and len(set(costs)) > 3  # it moves as readings arrive
    assert costs[-1].startswith("about €") and " to €" in costs[-1]  # no RAPL: the load, with its range
    assert dashboard.energy.title().startswith("Energy so far, estimated")
    assert dashboard.energy.labels["Power now"].text().endswith("W (estimated)")
    assert "CPU estimated from its load" in dashboard.energy.labels["Source"].text()
    assert "€0.40 per kWh" in dashboard.energy.labels["Source"].text()
    before = dashboard.energy.meter.energy_kwh
    dashboard.sampler.sampled.emit(reading(41.0, cpu_power_w=55.0))  # a RAPL reading: measured now
    assert dashboard.energy.meter.energy_kwh - before == pytest.approx(55.0 * 3 / 3.6e6)  # 55 W for 3 s
    assert "CPU measured (RAPL)" in dashboard.energy.labels["Source"].text()

    completed = next(e for e in recorded if isinstance(e, Completed))
    dashboard.bridge.feed_events([e for e in recorded[cut + 1:] if e.seq <= completed.seq])
    dashboard._refresh_if_dirty()
    assert dashboard.state.status is RunStatus.COMPLETED and dashboard.summary.isVisible()
    facts = dashboard.summary.facts
    assert facts["cost"].text() == dashboard.energy.labels["Cost"].text() + ", estimated"
    assert facts["energy"].text().startswith("about ") and "Wh" in facts["energy"].text()
    assert facts["co2"].text().endswith("estimated") and " g" in facts["co2"].text()


def test_a_zero_price_reads_free_on_the_dashboard(qtbot, dashboard, recorded: list[Event]):
    save_settings(EnergySettings(0.0, "EUR", 381.0, "DE"))
    dashboard.bridge.feed_events(recorded[:8])
    dashboard.sampler.sampled.emit(reading(0.0))
    dashboard.sampler.sampled.emit(reading(5.0))
    assert dashboard.energy.labels["Cost"].text().startswith("Free")
    assert dashboard.energy.labels["CO2"].text().endswith(" g)")  # free electricity still emits CO2


def test_a_past_run_shows_its_kept_figures(qtbot, dashboard, recorded_run_dir: Path):
    save_settings(EnergySettings(0.25, "GBP", 238.0, "GB"))
    with qtbot.waitSignal(dashboard.historyLoaded, timeout=20000):
        dashboard.open_run(recorded_run_dir)
    assert dashboard.summary.facts["cost"].text().startswith("not measured")

    save_run_energy(recorded_run_dir, RunEnergy(0.2, False, "CPU measured (RAPL)"))
    with qtbot.waitSignal(dashboard.historyLoaded, timeout=20000):
        dashboard.open_run(recorded_run_dir)
    facts = dashboard.summary.facts
    assert facts["energy"].text() == "200 Wh" and facts["cost"].text() == "£0.050" and facts["co2"].text() == "48 g"
    assert load_run_energy(recorded_run_dir) == RunEnergy(0.2, False, "CPU measured (RAPL)")


def test_a_starting_run_shows_its_steps(qtbot, dashboard, recorded: list[Event]):
    run_id = recorded[0].run_id
    startup = dashboard.startup
    dashboard.bridge.feed_events([Heartbeat(run_id=run_id, phase="loading_model", message="Loading the model")])
    dashboard._refresh_if_dirty()
    assert startup.isVisible() and startup.text.text().startswith("Step 1 of 4: Loading the model")
    first = startup.bar.value()
    dashboard.bridge.feed_events([Heartbeat(run_id=run_id, phase="preparing_data", message="Preparing the dataset")])
    dashboard._refresh_if_dirty()
    assert startup.text.text().startswith("Step 2 of 4: Preparing your data") and startup.bar.value() > first
    assert "so far" in startup.text.text()
    started = next(e for e in recorded if isinstance(e, Started))
    dashboard.bridge.feed_events([started])
    dashboard._refresh_if_dirty()
    assert dashboard.state.status is RunStatus.STARTING
    assert startup.isVisible() and startup.text.text().startswith("Step 4 of 4: Running the first step")
    first_progress = next(e for e in recorded if isinstance(e, Progress))
    dashboard.bridge.feed_events([first_progress])
    dashboard._refresh_if_dirty()
    assert dashboard.state.status is RunStatus.RUNNING and not startup.isVisible()
