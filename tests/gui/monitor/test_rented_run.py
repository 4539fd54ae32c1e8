"""A run on a rented GPU from the wizard to the library, against a fake RunPod whose pods are the real run
agent on 127.0.0.1 (tests/engine/cloud/fake_runpod.py): the user picks an offer, sees its estimate, launches,
watches the run with its running cost, the machine is taken back once (a spot preemption) and the run goes on
on a new one, and the adapter comes back into the library while the fake says every pod was terminated."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from studio.engine.cloud import save_api_key
from studio.engine.cloud.cloud_state import load_launch
from studio.engine.runs.folders import final_adapter_dir
from studio.engine.runs.registry import Registry
from studio.monitor.state import RunStatus
from studio.wizard.state import WizardState
from tests.engine.cloud.fake_runpod import GOOD_KEY, fake_runpod_pods

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(sys.platform == "win32", reason="the bundle's launch script is a bash script")]

SLOW = 300_000  # ms: two pods, each loading the tiny model on a busy 2-core machine


@pytest.fixture
def runpod(monkeypatch, tmp_path, studio_home):
    with fake_runpod_pods(monkeypatch, tmp_path) as api:
        save_api_key("runpod", GOOD_KEY)
        yield api


def test_a_rented_run_is_preempted_resumes_and_lands_in_the_library(qtbot, click, make_window, runpod,
                                                                     tiny_model_dir: Path, tiny_chat_file: Path,
                                                                     slow_steps):
    overrides = {"max_steps": 12, "checkpoint_every_steps": 3, "eval_fraction": 0.0, "micro_batch_size": 2,
                 "gradient_accumulation": 1, "max_length": 64, "score_examples": False, "hardest_top_n": 0}
    window = make_window(state=WizardState(onboarding_done=True, profile_id="chatbot", page=4,
                                           dataset_path=str(tiny_chat_file), model_ref=str(tiny_model_dir),
                                           overrides=overrides))
    wizard = window.wizard
    wizard.start()
    qtbot.waitUntil(lambda: wizard.ready and wizard.session.plan is not None and wizard.index == 4,
                    timeout=120_000)
    review = wizard.page_at(4)
    box = review.where

    # Pick an offer: a spot GPU, with its time and cost estimate and the suggested budget.
    click(box.rented)
    qtbot.waitUntil(lambda: not box.runner.busy and box.table.isVisible(), timeout=60_000)
    spot = next(row for row, item in enumerate(box.report.estimates) if item.offer.price.spot)
    rect = box.table.visualItemRect(box.table.item(spot, 0))
    qtbot.mouseClick(box.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    chosen = box.selected()
    assert chosen.offer.price.spot
    assert box.table.item(spot, 5).text().startswith("about $") and box.budget.value() >= chosen.cost.expected
    box.budget.setFocus()
    box.budget.selectAll()
    qtbot.keyClicks(box.budget, "2")
    qtbot.keyClick(box.budget, Qt.Key.Key_Tab)
    assert box.budget_value() == 2.0

    # Launch: the dashboard names the rented GPU and supervises the cloud runner.
    taken: list[str] = []

    def take_back(batch) -> None:
        if not taken and any(event.kind == "checkpoint" for event in batch) and runpod.created:
            taken.append(runpod.created[-1])
            runpod.preempt(taken[0])  # the machine goes at once, mid-training

    qtbot.waitUntil(wizard.next_button.isEnabled)
    click(wizard.next_button)
    dashboard = window.dashboard
    assert dashboard is not None and window.stack.currentWidget() is dashboard
    # On the runner's reader thread, as the checkpoint comes in: the remote run is still training then.
    dashboard.bridge.events.connect(take_back, Qt.ConnectionType.DirectConnection)
    gpu = chosen.offer.gpu.name.removeprefix("NVIDIA ")
    assert dashboard.rented_label.isVisible()
    assert dashboard.rented_label.text().startswith(f"Rented GPU: {gpu} on RunPod (spot")
    run_id = dashboard.state.run_id
    launch = load_launch(dashboard.run_dir)
    assert (launch.gpu_id, launch.spot, launch.budget_usd) == (chosen.offer.gpu.id, True, 2.0)

    # The running cost, against the budget, while it trains.
    costs: list[str] = []
    qtbot.waitUntil(lambda: dashboard.energy.labels["Cost"].text().startswith("$") and
                    costs.append(dashboard.energy.labels["Cost"].text()) is None, timeout=SLOW)
    assert dashboard.energy.title() == "Rented GPU cost so far"
    assert dashboard.energy.labels["Energy"].text() == "$2.00"
    assert dashboard.energy.labels["Power now"].text() == f"${chosen.offer.price.per_hour:.2f} per hour"

    qtbot.waitUntil(lambda: dashboard.state.status.finished, timeout=SLOW)
    assert dashboard.state.status is RunStatus.COMPLETED, dashboard.state.error or dashboard.state.crash
    assert taken, "the run ended before its first checkpoint came back"
    assert any("new machine" in card.text() for card in _alert_texts(dashboard)), _alert_texts(dashboard)

    # The adapter is in the library as a version of the run; every pod was terminated, nothing bills.
    launch = load_launch(dashboard.run_dir)
    assert len(launch.pods) == 2 and launch.pods[0] == taken[0]
    assert sorted(runpod.terminated) == sorted(launch.pods) and runpod.billing() == []
    assert launch.imported_run_id is not None
    record = Registry().get(launch.imported_run_id)
    assert record is not None and record.status == "completed" and record.parent_id == run_id
    assert (final_adapter_dir(record.run_dir) / "adapter_model.safetensors").is_file()
    library = window.show_runs()
    qtbot.waitUntil(lambda: record.id in library.rows and not library.loader.busy, timeout=30_000)


def _alert_texts(dashboard) -> list:
    from PySide6.QtWidgets import QLabel

    return [label for label in dashboard.alerts.findChildren(QLabel) if label.text()]


def test_pause_and_release_resume_and_stop_of_a_rented_run_from_the_dashboard(qtbot, dashboard, runpod,
                                                                               tiny_model_dir: Path,
                                                                               tiny_chat_file: Path, slow_steps):
    from studio.engine.cloud.offers import Offer, OfferEstimate
    from studio.engine.cloud.providers import GpuType, Price
    from studio.engine.planner import Interval
    from tests.gui.monitor.test_live_run import tiny_config, wait_status

    config = tiny_config(tiny_model_dir, tiny_chat_file).updated(eval_fraction=0.0, checkpoint_every_steps=1000,
                                                                 score_examples=False, hardest_top_n=0)
    gpu = GpuType("NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 4090", 24.0)
    offer = OfferEstimate(Offer("runpod", gpu, Price(0.34, False, "community")), config,
                          Interval(900, 1000, 1100), Interval(400, 600, 1200), Interval(0.04, 0.06, 0.11))
    dashboard.controls.confirm_stop = lambda parent: True
    dashboard.start_run(config, offer=offer, budget=5.0)
    assert dashboard.rented_label.text().startswith("Rented GPU: GeForce RTX 4090 on RunPod (on-demand")
    qtbot.waitUntil(lambda: dashboard.state.step >= 2, timeout=SLOW)
    wait_status(qtbot, dashboard, RunStatus.RUNNING)

    dashboard.controls.buttons["pause_release"].click()  # the machine goes back; the checkpoint comes here
    wait_status(qtbot, dashboard, RunStatus.RELEASED, timeout=SLOW)
    qtbot.waitUntil(lambda: dashboard.supervisor is None, timeout=60_000)
    assert runpod.billing() == [] and len(runpod.terminated) == 1
    released_at = dashboard.state.step

    dashboard.controls.buttons["resume"].click()  # a new machine, from the checkpoint kept here
    qtbot.waitUntil(lambda: dashboard.state.step > released_at, timeout=SLOW)
    assert len(runpod.created) == 2
    dashboard.controls.buttons["stop"].click()
    wait_status(qtbot, dashboard, RunStatus.STOPPED, timeout=SLOW)
    qtbot.waitUntil(lambda: dashboard.supervisor is None, timeout=60_000)
    assert sorted(runpod.terminated) == sorted(runpod.created) and runpod.billing() == []
