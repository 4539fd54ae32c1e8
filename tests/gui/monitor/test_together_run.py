"""A Together AI fine-tuning job watched in the dashboard, against a fake Together whose jobs run Studio's real
worker (tests/engine/cloud/fake_together.py): the dashboard starts the Together runner for a run with a
together.json, shows the job's status and Together's event messages as they come, its cost against the
budget, and ends with the adapter in the library as a new version."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.engine.cloud import save_api_key
from studio.engine.cloud.together_api import prepare_together
from studio.engine.cloud.together_state import load_together
from studio.engine.runs.folders import final_adapter_dir
from studio.engine.runs.registry import Registry
from studio.monitor.dashboard import runner_command
from studio.monitor.state import RunStatus
from tests.engine.cloud.fake_together import GOOD_KEY, MODEL, fake_together
from tests.engine.cloud.test_agent import _queued_run

pytestmark = pytest.mark.slow

SLOW = 300_000  # ms: the fake's job loads and trains the tiny model on a busy 2-core machine


@pytest.fixture
def together(monkeypatch, tmp_path, studio_home, tiny_model_dir):
    with fake_together(monkeypatch, tmp_path, tiny_model_dir) as api:
        save_api_key("together", GOOD_KEY)
        yield api


def test_a_together_job_shows_its_status_events_and_cost_and_lands_in_the_library(qtbot, dashboard, together,
                                                                                  tiny_model_dir: Path,
                                                                                  slow_steps):
    run_dir = _queued_run(tiny_model_dir, lora_r=4, lora_alpha=8, num_epochs=1)
    prepare_together(run_dir, GOOD_KEY, 2.0, model=MODEL)
    assert runner_command(run_dir)[-2:] == ["studio.engine.cloud.together_runner", str(run_dir)]

    dashboard.resume_run(run_dir)  # a queued run: the dashboard starts its runner
    qtbot.waitUntil(lambda: dashboard.supervisor is not None, timeout=60_000)
    assert dashboard.rented_label.isVisible() and "Together AI" in dashboard.rented_label.text()

    # The job's status and Together's own event messages, in the run's status line as they come.
    shown: list[str] = []

    def showing(text: str) -> bool:
        shown.append(dashboard.progress.status.text())
        return any(text in line for line in shown)

    qtbot.waitUntil(lambda: showing("Starting: Together AI (queued): Training data downloaded"), timeout=SLOW)
    qtbot.waitUntil(lambda: dashboard.state.status is RunStatus.RUNNING or dashboard.state.status.finished,
                    timeout=SLOW)

    # The cost against the budget, in the rented-cost panel.
    qtbot.waitUntil(lambda: dashboard.energy.labels["Cost"].text().startswith("$"), timeout=SLOW)
    assert dashboard.energy.title() == "Rented GPU cost so far"
    assert dashboard.energy.labels["Energy"].text() == "$2.00"  # the budget cap

    qtbot.waitUntil(lambda: dashboard.state.status.finished, timeout=SLOW)
    assert dashboard.state.status is RunStatus.COMPLETED, dashboard.state.error or dashboard.state.crash
    qtbot.waitUntil(lambda: dashboard.progress.status.text() == "Finished", timeout=10_000)
    assert dashboard.progress.step.text() == "3 of 3"  # the steps Together reported
    assert dashboard.energy.labels["Cost"].text() == "$0.42"  # Together's price, once the job is done
    assert dashboard.energy.labels["CO2"].text() == "21%"  # of the budget

    state = load_together(run_dir)
    assert state.outcome == "completed" and together.created == [state.job_id]
    record = Registry().get(state.imported_run_id or "")
    assert record is not None and record.status == "completed" and record.parent_id == run_dir.name
    assert (final_adapter_dir(record.run_dir) / "adapter_model.safetensors").is_file()
    assert dashboard.state.completed is not None
    assert dashboard.state.completed.adapter_path == str(final_adapter_dir(record.run_dir))
