"""A real worker (tiny model) driven from the dashboard: start, pause, resume, release, resume, stop.

Buttons are clicked as a person would, and every wait is on what the worker reported, never on a guess.
"""

from __future__ import annotations

from pathlib import Path

from studio.engine.config import TrainConfig
from studio.engine.planner.calibration import default_store
from studio.engine.power_meter import load_run_energy
from studio.engine.runs.registry import Registry
from studio.monitor.state import RunStatus

SLOW = 240_000  # ms; loading even the tiny model can take a while on a busy 2-core machine


def tiny_config(model: Path, data: Path) -> TrainConfig:
    return TrainConfig.from_dict({
        "base_model": str(model), "dataset_path": str(data), "max_steps": 400, "micro_batch_size": 4,
        "gradient_accumulation": 1, "max_length": 64, "learning_rate": 5e-3, "lora_r": 4, "lora_alpha": 8,
        "checkpoint_every_steps": 1000, "eval_fraction": 0.1, "warmup_ratio": 0.0,
    })


def wait_status(qtbot, dashboard, status: RunStatus, timeout: int = 120_000) -> None:
    qtbot.waitUntil(lambda: dashboard.state.status is status and dashboard.controls.pending is None,
                    timeout=timeout)


def test_dashboard_drives_a_real_worker(qtbot, dashboard, tiny_model_dir: Path, tiny_chat_file: Path,
                                        slow_steps: None) -> None:
    dashboard.controls.confirm_stop = lambda parent: True
    run_id = dashboard.start_run(tiny_config(tiny_model_dir, tiny_chat_file))
    assert Registry().get(run_id) is not None
    assert dashboard.state.status is RunStatus.STARTING
    assert dashboard.controls.enabled_buttons() == {"stop"}

    qtbot.waitUntil(lambda: dashboard.state.step >= 2, timeout=SLOW)
    wait_status(qtbot, dashboard, RunStatus.RUNNING)
    assert dashboard.controls.enabled_buttons() == {"pause", "pause_release", "stop", "checkpoint"}
    assert dashboard.charts.plotted("loss_raw")[0] or dashboard.buffers.series["loss"].x.size

    dashboard.controls.buttons["pause"].click()
    assert dashboard.controls.enabled_buttons() == {"stop"}  # waiting for the worker's word
    wait_status(qtbot, dashboard, RunStatus.PAUSED)
    assert dashboard.controls.enabled_buttons() == {"resume", "pause_release", "stop", "checkpoint"}
    paused_at = dashboard.state.step

    dashboard.controls.buttons["resume"].click()
    wait_status(qtbot, dashboard, RunStatus.RUNNING)
    qtbot.waitUntil(lambda: dashboard.state.step > paused_at, timeout=60_000)

    dashboard.controls.buttons["stop"].click()
    wait_status(qtbot, dashboard, RunStatus.STOPPED)
    qtbot.waitUntil(lambda: dashboard.supervisor is None, timeout=60_000)  # the worker process has exited
    assert dashboard.controls.enabled_buttons() == set()
    qtbot.waitUntil(dashboard.summary.isVisible)
    assert dashboard.summary.title.text() == "Training stopped"
    assert dashboard.state.stopped is not None and dashboard.state.stopped.checkpoint_path
    # What the run used and how fast it went are kept: for the completion card, and for the next plan's time.
    assert dashboard.summary.facts["energy"].text().startswith("about ")  # no RAPL here: an estimate
    assert load_run_energy(dashboard.run_dir) is not None
    measured = list(default_store().entries().values())
    assert len(measured) == 1 and measured[0].seconds_per_token > 0 and measured[0].startup_s


def test_release_then_resume_starts_a_new_worker(qtbot, dashboard, tiny_model_dir: Path, tiny_chat_file: Path,
                                                 slow_steps: None) -> None:
    dashboard.controls.confirm_stop = lambda parent: True
    dashboard.start_run(tiny_config(tiny_model_dir, tiny_chat_file))
    qtbot.waitUntil(lambda: dashboard.state.step >= 2, timeout=SLOW)
    dashboard.controls.buttons["pause_release"].click()
    wait_status(qtbot, dashboard, RunStatus.RELEASED)
    qtbot.waitUntil(lambda: dashboard.supervisor is None, timeout=60_000)
    released_at = dashboard.state.step
    assert dashboard.controls.enabled_buttons() == {"resume"}

    dashboard.controls.buttons["resume"].click()
    qtbot.waitUntil(lambda: dashboard.state.step > released_at, timeout=SLOW)
    assert dashboard.state.status is RunStatus.RUNNING
    steps = dashboard.buffers.series["loss"].x.tolist()
    assert steps == sorted(steps)  # the resumed worker carried on from where the first one stopped
    dashboard.controls.buttons["stop"].click()
    wait_status(qtbot, dashboard, RunStatus.STOPPED)
    qtbot.waitUntil(lambda: dashboard.supervisor is None, timeout=60_000)


def test_a_worker_killed_mid_run_shows_why_and_offers_resume(qtbot, dashboard, tiny_model_dir: Path,
                                                             tiny_chat_file: Path, slow_steps: None) -> None:
    import os
    import signal

    dashboard.start_run(tiny_config(tiny_model_dir, tiny_chat_file))
    qtbot.waitUntil(lambda: dashboard.state.step >= 1, timeout=SLOW)
    assert not dashboard.progress.crash.isVisible()
    os.killpg(dashboard.supervisor.pid, signal.SIGKILL)  # out of memory, as the kernel ends it
    wait_status(qtbot, dashboard, RunStatus.INTERRUPTED)
    crash = dashboard.progress.crash
    qtbot.waitUntil(crash.isVisible)
    assert "ended unexpectedly (exit code -9)" in crash.text()
    assert "Its last words:" in crash.text()  # the end of its log, not only "interrupted"
    assert dashboard.controls.enabled_buttons() == {"resume"}
