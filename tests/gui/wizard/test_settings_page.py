"""The settings page: planner defaults with reasons, live estimates, advanced fields, presets, and review."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog, QInputDialog

from studio.engine.config import TrainConfig, list_presets
from studio.engine.models.builtin import BUILTIN_FOLDER, BUILTIN_NAME
from studio.engine.models.facts import ModelFacts, facts_from_config
from studio.wizard.session import HIDDEN_FIELDS, LOCKED_FIELDS
from studio.wizard.state import WizardState

# The built-in model's shape, as its config.json says: the planner needs only these facts, so the page is
# tested without reading (or first unpacking) the model.
SMOLLM2_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 576, "num_hidden_layers": 30,
    "num_attention_heads": 9, "num_key_value_heads": 3, "intermediate_size": 1536, "vocab_size": 49152,
    "max_position_embeddings": 8192, "tie_word_embeddings": True, "torch_dtype": "bfloat16",
}


def fake_facts(_model_ref: str | None) -> ModelFacts:
    return facts_from_config(SMOLLM2_CONFIG, name=BUILTIN_NAME, path=Path("/not/read") / BUILTIN_FOLDER,
                             has_chat_template=True, size_on_disk_mb=270.0)


@pytest.fixture
def settings(qtbot, make_wizard, tiny_chat_file):
    wizard = make_wizard(WizardState(onboarding_done=True, profile_id="chatbot", page=3,
                                     dataset_path=str(tiny_chat_file)), start=False)
    wizard.session.read_facts = fake_facts
    wizard.start()
    qtbot.waitUntil(lambda: wizard.ready, timeout=60_000)
    qtbot.waitUntil(lambda: wizard.session.plan is not None, timeout=60_000)
    assert wizard.session.planned.facts.path == str(Path("/not/read") / BUILTIN_FOLDER)
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
