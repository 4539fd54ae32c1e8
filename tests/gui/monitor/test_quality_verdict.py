"""The quality verdict on the completion card: a real tiny run completes in the dashboard, the check starts by
itself in the background and its verdict and worse examples appear; it can be cancelled and switched off."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.library.quality import REPORT_FILE, load_report
from studio.gui import app_settings
from studio.monitor.quality_panel import AUTO_SETTING, QualityPanel, auto_check_enabled
from studio.monitor.state import RunStatus

SLOW = 240_000  # ms; loading even the tiny model can take a while on a busy 2-core machine
SHOTS = os.environ.get("STUDIO_SCREENSHOTS")  # a folder: save the verdict's screenshot there for the docs


def test_a_completed_run_gets_its_verdict_by_itself(qtbot, dashboard, tiny_model_dir: Path, tiny_chat_file: Path):
    config = TrainConfig.from_dict({
        "base_model": str(tiny_model_dir), "dataset_path": str(tiny_chat_file), "profile": "qa", "max_steps": 6,
        "micro_batch_size": 4, "gradient_accumulation": 1, "max_length": 64, "learning_rate": 5e-3,
        "lora_r": 4, "lora_alpha": 8, "checkpoint_every_steps": 1000, "eval_fraction": 0.1, "warmup_ratio": 0.0,
    })
    dashboard.start_run(config)
    panel = dashboard.summary.quality
    progress: list[float] = []
    panel.runner.progressChanged.connect(progress.append)
    qtbot.waitUntil(lambda: dashboard.state.status is RunStatus.COMPLETED, timeout=SLOW)
    qtbot.waitUntil(dashboard.summary.isVisible)
    assert panel.running and panel.cancel_button.isVisible() and panel.progress.isVisible()  # in the background
    assert "Checking" in panel.status.text()
    qtbot.waitUntil(lambda: panel.report is not None, timeout=SLOW)

    report = panel.report
    assert report is not None and report.tally is not None and report.tally.metric == "token F1"
    assert not panel.running and not panel.cancel_button.isVisible() and progress and max(progress) == 1.0
    assert report.verdict in panel.verdict.text() and "6 held-out examples" in report.verdict
    assert "Base model" in panel.metrics.text() and "token F1" in panel.metrics.text()
    assert len(panel.worse) == len(report.worse_examples)
    assert panel.worse_title.isVisible() == bool(report.worse_examples)
    for label, example in zip(panel.worse, report.worse_examples, strict=True):
        assert "Prompt:" in label.text() and "Tuned model:" in label.text() and example["metric"] in label.text()
    assert dashboard.run_dir is not None and (dashboard.run_dir / REPORT_FILE).is_file()
    assert load_report(dashboard.run_dir) == report  # saved with the version
    assert panel.check_button.isVisible() and panel.check_button.text() == "Check again"

    target = Path(SHOTS) if SHOTS else dashboard.run_dir
    dashboard.summary.grab().save(str(target / "quality-verdict.png"))
    assert (target / "quality-verdict.png").stat().st_size > 10_000


def test_the_check_can_be_cancelled_and_switched_off(qtbot, library):
    panel = QualityPanel()
    qtbot.addWidget(panel, before_close_func=lambda w: w.shutdown())
    panel.show()
    panel.set_run(library.parent.id, library.parent.run_dir)
    assert panel.report is None and "Not checked yet" in panel.status.text() and panel.check_button.isVisible()

    panel.check_button.click()
    assert panel.running and panel.cancel_button.isVisible() and not panel.check_button.isVisible()
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: not panel.running, timeout=SLOW)
    assert panel.report is None and "skipped" in panel.status.text() and panel.check_button.isVisible()
    assert not (library.parent.run_dir / REPORT_FILE).exists()

    assert auto_check_enabled() and panel.auto.isChecked()
    panel.auto.click()
    assert not auto_check_enabled() and app_settings.load()[AUTO_SETTING] is False


def test_a_saved_verdict_is_shown_without_running_anything(qtbot, library):
    from studio.engine.library.metrics import Tally
    from studio.engine.library.quality import LossScore, QualityReport, save_report

    worse = {"prompt": "What is 3 plus 4?", "reference": "Pip says 7.", "base": "Pip says 7.",
             "tuned": "Pip says 8.", "metric": "token F1", "base_score": 1.0, "tuned_score": 0.667}
    save_report(library.parent.run_dir, QualityReport(
        library.parent.id, "now", 50, LossScore(2.0, 7.39, 300), LossScore(1.0, 2.72, 300),
        tally=Tally(41, 5, 4, "token F1"), worse_examples=(worse,)))
    panel = QualityPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.set_run(library.parent.id, library.parent.run_dir)
    assert not panel.running
    assert "Better than the base model on 41 of 50 held-out examples" in panel.verdict.text()
    assert len(panel.worse) == 1 and "Pip says 8." in panel.worse[0].text()
    assert "perplexity" in panel.metrics.text() and panel.metrics.toolTip()  # explained by the glossary


def _complete_live(dashboard, recorded, **config: object) -> None:
    """Feed a recorded run's events as if this page had watched it train (what start_run would set)."""
    from dataclasses import replace

    from studio.engine.events import Started

    dashboard._live = True  # the page watched this run: its completion is news (set by start_run / attach)
    events = [replace(e, config={**e.config, **config}) if isinstance(e, Started) else e for e in recorded]
    dashboard.bridge.feed_events(events)
    dashboard._refresh_if_dirty()


def test_no_automatic_check_when_switched_off(qtbot, dashboard, recorded):
    app_settings.update(**{AUTO_SETTING: False})
    _complete_live(dashboard, recorded)
    panel = dashboard.summary.quality
    assert dashboard.state.status is RunStatus.COMPLETED and dashboard.summary.isVisible()
    assert not panel.running and "Not checked yet" in panel.status.text() and panel.check_button.isVisible()


@pytest.mark.parametrize(("config", "why"), [({"objective": "dpo"}, "preference pairs"),
                                             ({"eval_fraction": 0.0}, "No held-out examples")])
def test_no_check_for_preference_runs_or_without_held_out_data(qtbot, dashboard, recorded, config, why):
    _complete_live(dashboard, recorded, **config)
    panel = dashboard.summary.quality
    assert not panel.running and why in panel.status.text()
