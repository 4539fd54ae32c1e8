"""The dashboard of a run on a rented GPU (a cloud.json in its folder): it names the GPU and the provider,
shows the runner's running cost against the budget cap instead of this computer's energy, and starts the
cloud runner in place of the local worker. The recorded real run stands in for the remote events."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from studio.engine.cloud.cloud_state import write_launch
from studio.engine.events import Heartbeat
from studio.monitor.dashboard import runner_command
from studio.monitor.system_stats import SystemSample
from tests.gui.monitor.conftest import RECORDED
from tests.hub_server import MemoryKeyring


@pytest.fixture
def rented_dir(tmp_path, monkeypatch, recorded):
    monkeypatch.setattr("keyring.core._keyring_backend", MemoryKeyring())
    run_dir = tmp_path / "runs" / recorded[0].run_id
    run_dir.mkdir(parents=True)
    shutil.copy(RECORDED, run_dir / "events.jsonl")
    write_launch(run_dir, "runpod", "NVIDIA GeForce RTX 4090", spot=True, cloud="community", budget_usd=1.5,
                 price_per_hour=0.2)
    return run_dir


def test_a_rented_run_names_its_gpu_and_shows_its_cost_against_the_cap(qtbot, dashboard, rented_dir, recorded):
    with qtbot.waitSignal(dashboard.historyLoaded, timeout=20_000):
        dashboard.open_run(rented_dir)
    label = dashboard.rented_label
    assert label.isVisible()
    assert label.text() == ("Rented GPU: GeForce RTX 4090 on RunPod (spot, community cloud, $0.20 per hour, "
                            "budget cap $1.50)")
    energy = dashboard.energy
    assert energy.names["Power now"].text() == "Price" and energy.labels["Power now"].text() == "$0.20 per hour"
    assert energy.labels["Energy"].text() == "$1.50" and energy.labels["Cost"].text() == "—"

    dashboard.bridge.feed_events([Heartbeat(run_id=recorded[0].run_id, phase="cloud_cost", message="spent",
                                            extra={"cost_usd": 0.375, "budget_usd": 1.5, "price_per_hour": 0.2})])
    qtbot.waitUntil(lambda: energy.labels["Cost"].text() == "$0.38")
    assert energy.labels["CO2"].text() == "25%" and energy.names["CO2"].text() == "Budget used"
    assert energy.title() == "Rented GPU cost so far"
    assert "spent" not in dashboard.state.phase  # the cost is money, not what the run is doing
    energy.add_sample(SystemSample(t=1.0, cpu_percent=90.0, ram_percent=40.0, ram_used_bytes=4e9))
    assert energy.labels["Cost"].text() == "$0.38"  # this computer's power is not the rented run's
    assert runner_command(rented_dir)[-3:] == ["-m", "studio.engine.cloud.runner", str(rented_dir)]


def test_a_local_run_keeps_the_energy_panel(qtbot, dashboard, recorded_run_dir):
    with qtbot.waitSignal(dashboard.historyLoaded, timeout=20_000):
        dashboard.open_run(recorded_run_dir)
    assert not dashboard.rented_label.isVisible() and dashboard.rented is None
    assert dashboard.energy.names["Power now"].text() == "Power now"
    assert dashboard.energy.labels["Energy"].accessibleName() == "Energy so far"


SHOTS = os.environ.get("STUDIO_SCREENSHOTS")  # a folder: the docs' screenshot is taken (docs/screenshots)


@pytest.mark.skipif(not SHOTS, reason="takes the docs' screenshot only when STUDIO_SCREENSHOTS names a folder")
def test_screenshot_of_a_rented_run_training(qtbot, dashboard, rented_dir, recorded):
    from studio.engine.events import Completed

    dashboard._reset(rented_dir)  # as start_run does, without renting anything
    dashboard.bridge.set_sender(lambda command: True)  # the controls of a live run
    live = [event for event in recorded if not isinstance(event, Completed)][: len(recorded) // 2]
    dashboard.bridge.feed_events(live, live=True)
    dashboard.bridge.feed_events([Heartbeat(run_id=recorded[0].run_id, phase="cloud_cost", message="",
                                            extra={"cost_usd": 0.12, "budget_usd": 1.5})], live=True)
    qtbot.waitUntil(lambda: dashboard.energy.isVisible() and dashboard.energy.labels["Cost"].text() == "$0.12")
    dashboard.charts.redraw()
    qtbot.wait(300)
    dashboard.grab().save(str(Path(SHOTS) / "dashboard-rented-gpu.png"))
