"""The settings page: planner defaults with reasons, live estimates, advanced fields, presets, and review."""

from __future__ import annotations

import importlib.util

import pytest
from PySide6.QtWidgets import QFileDialog, QInputDialog

from studio.engine.config import TrainConfig, list_presets
from studio.wizard.session import HIDDEN_FIELDS, LOCKED_FIELDS
from studio.wizard.state import WizardState

pytestmark = pytest.mark.slow  # needs the built-in model's config for the planner


@pytest.fixture
def settings(qtbot, make_wizard, tiny_chat_file, builtin_model_dir):
    wizard = make_wizard(WizardState(onboarding_done=True, profile_id="chatbot", page=3,
                                     dataset_path=str(tiny_chat_file)))
    qtbot.waitUntil(lambda: wizard.session.plan is not None, timeout=60_000)
    return wizard, wizard.page_at(3)


def test_defaults_come_with_reasons_and_estimates(settings):
    wizard, page = settings
    plan = wizard.session.plan
    assert wizard.next_button.isEnabled()
    assert page.epochs.value() == pytest.approx(plan.config.num_epochs)
    assert page.basic_whys["num_epochs"].label.text() == plan.explanations["num_epochs"]
    page.basic_whys["num_epochs"].button.click()
    assert page.basic_whys["num_epochs"].label.isVisible()
    assert page.estimate_labels["Training time"].text().startswith("about ")
    assert " to " in page.estimate_labels["Peak memory"].text()


def test_changing_a_knob_updates_the_estimates(settings):
    wizard, page = settings
    before = page.estimate_labels["Training time"].text()
    page.epochs.setValue(page.epochs.value() * 3)
    page.epochs.editingFinished.emit()
    assert wizard.session.state.overrides["num_epochs"] == pytest.approx(page.epochs.value())
    assert page.estimate_labels["Training time"].text() != before
    assert wizard.session.final_config().num_epochs == pytest.approx(page.epochs.value())


def test_advanced_view_has_every_field_and_rejects_bad_values(qtbot, settings):
    wizard, page = settings
    page.advanced_toggle.click()
    assert page.advanced_box.isVisible() and wizard.session.state.advanced_view
    assert set(page.form.editors) == set(TrainConfig.model_fields) - LOCKED_FIELDS - HIDDEN_FIELDS
    editor = page.form.editors["lora_dropout"]
    editor.setText("0.9")
    editor.editingFinished.emit()
    assert page.banner.isVisible() and "lora_dropout" in page.banner.text()
    assert "lora_dropout" not in wizard.session.state.overrides
    assert float(editor.text()) == pytest.approx(wizard.session.final_config().lora_dropout)


def test_settings_that_do_not_fit_block_next(settings):
    wizard, page = settings
    page._set("micro_batch_size", 1024)
    page._set("max_length", 32768)
    assert not wizard.next_button.isEnabled()
    assert "memory" in wizard.message.text()
    assert page.banner.isVisible()


def test_presets_save_export_import_and_load(settings, monkeypatch, tmp_path):
    wizard, page = settings
    page._set("lora_r", 8)
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("small adapter", True))
    page.save_preset_button.click()
    assert "small adapter" in list_presets()
    exported = tmp_path / "small.json"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(exported), ""))
    page.export_button.click()
    assert TrainConfig.load(exported).lora_r == 8

    page._set("lora_r", 64)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(exported), ""))
    page.import_button.click()
    assert wizard.session.final_config().lora_r == 8
    assert wizard.session.final_config().dataset_path == wizard.session.state.dataset_path


def test_review_offers_two_alternatives_that_can_be_taken(qtbot, settings):
    wizard, _page = settings
    wizard.next()
    review = wizard.page_at(4)
    assert wizard.page is review
    faster, better = review.alternative_boxes
    assert faster.alternative.config.num_epochs < better.alternative.config.num_epochs
    faster.use.click()
    assert wizard.session.final_config().num_epochs == faster.alternative.config.num_epochs
    assert review.banner.title.text().startswith("Switched to")


@pytest.fixture
def without_wandb(monkeypatch):
    """This computer has no wandb, whatever is installed where the tests run."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *args, **kwargs: None if name == "wandb" else real(name, *args, **kwargs))


def test_trackers_ticked_in_the_advanced_view_reach_the_launched_config(qtbot, click, without_wandb, settings):
    wizard, page = settings
    click(page.advanced_toggle)
    boxes = page.form.editors["report_to"].boxes
    shown = [box.text().replace("&&", "&") for box in boxes.values()]  # Qt shows "&&" as "&"
    assert shown == ["TensorBoard", "Weights & Biases", "MLflow"]
    assert not boxes["wandb"].isEnabled()
    assert "not installed" in boxes["wandb"].toolTip() and "pip install wandb" in boxes["wandb"].toolTip()
    assert boxes["tensorboard"].isEnabled() and "TensorBoard" in boxes["tensorboard"].toolTip()

    click(boxes["tensorboard"])
    assert wizard.session.state.overrides["report_to"] == ["tensorboard"]
    click(wizard.next_button)
    assert wizard.page is wizard.page_at(4)
    with qtbot.waitSignal(wizard.launchRequested, timeout=5000) as launched:
        click(wizard.next_button)
    config = launched.args[0]
    assert isinstance(config, TrainConfig) and config.report_to == ["tensorboard"]
