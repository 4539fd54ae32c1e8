"""The generated settings form: one editor per field, typed values out, no signals when filled in."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QSpinBox

from studio.engine.config import TrainConfig
from studio.gui.model_form import Choice, ChoiceBoxes, ModelForm


def test_editor_types_and_values(qtbot):
    form = ModelForm(TrainConfig, skip=frozenset({"schema_version"}))
    qtbot.addWidget(form)
    assert "schema_version" not in form.editors
    assert isinstance(form.editors["packing"], QCheckBox)
    assert isinstance(form.editors["method"], QComboBox)
    assert isinstance(form.editors["lora_r"], QSpinBox) and form.editors["lora_r"].maximum() == 1024
    assert isinstance(form.editors["learning_rate"], QLineEdit)
    for name, editor in form.editors.items():
        assert editor.accessibleName() and editor.toolTip() == TrainConfig.model_fields[name].description

    changes = []
    form.valueChanged.connect(lambda name, value: changes.append((name, value)))
    form.set_values(TrainConfig().model_dump(mode="json"))
    assert changes == []  # filling in is not a user change

    form.editors["max_steps"].setValue(form.editors["max_steps"].minimum())
    form.editors["max_steps"].editingFinished.emit()
    form.editors["learning_rate"].setText("1e-4")
    form.editors["learning_rate"].editingFinished.emit()
    form.editors["target_modules"].setText('["q_proj", "v_proj"]')
    form.editors["target_modules"].editingFinished.emit()
    form.editors["packing"].setChecked(True)
    form.editors["max_steps"].setValue(2)
    form.editors["max_steps"].editingFinished.emit()
    assert changes == [
        ("learning_rate", 1e-4),
        ("target_modules", ["q_proj", "v_proj"]),
        ("packing", True),
        ("max_steps", 2),
    ]
    assert form.editors["max_steps"].specialValueText() == "automatic"


def test_notes_replace_descriptions(qtbot):
    form = ModelForm(TrainConfig)
    qtbot.addWidget(form)
    form.set_notes({"lora_r": "Rank 16 suits chat data."})
    assert form.whys["lora_r"].label.text() == "Rank 16 suits chat data."
    assert form.whys["seed"].label.text() == TrainConfig.model_fields["seed"].description


class Palette(BaseModel):
    colours: list[Literal["red", "green", "blue"]] = Field(default_factory=list, description="Colours to paint.")


def test_a_list_of_fixed_choices_is_a_row_of_checkboxes(qtbot, click):
    form = ModelForm(Palette, choices={"colours": lambda v: Choice(v.title(), f"Paint {v}.", available=v != "blue")})
    qtbot.addWidget(form)
    form.show()
    editor = form.editors["colours"]
    assert isinstance(editor, ChoiceBoxes) and list(editor.boxes) == ["red", "green", "blue"]
    assert editor.boxes["red"].text() == "Red" and editor.boxes["red"].accessibleName() == "Colours: Red"
    assert not editor.boxes["blue"].isEnabled() and editor.boxes["blue"].toolTip() == "Paint blue."

    changes = []
    form.valueChanged.connect(lambda name, value: changes.append((name, value)))
    form.set_values({"colours": ["blue"]})  # e.g. from a preset made on another computer
    assert editor.boxes["blue"].isChecked() and editor.boxes["blue"].isEnabled() and changes == []
    click(editor.boxes["green"])
    click(editor.boxes["blue"])
    assert changes == [("colours", ["green", "blue"]), ("colours", ["green"])]  # in the field's order

    form.set_values({"colours": ["green"]})
    assert not editor.boxes["blue"].isEnabled()


def test_an_ampersand_in_a_choice_is_shown_not_taken_as_a_shortcut(qtbot):
    boxes = ChoiceBoxes("Report to", {"wandb": Choice("Weights & Biases")})
    qtbot.addWidget(boxes)
    assert boxes.boxes["wandb"].text() == "Weights && Biases" and not boxes.boxes["wandb"].shortcut().toString()
    assert boxes.boxes["wandb"].accessibleName() == "Report to: Weights & Biases"


def test_choices_are_named_after_their_values_by_default(qtbot):
    form = ModelForm(TrainConfig)
    qtbot.addWidget(form)
    boxes = form.editors["report_to"]
    assert isinstance(boxes, ChoiceBoxes) and list(boxes.boxes) == ["tensorboard", "wandb", "mlflow"]
    assert boxes.boxes["tensorboard"].text() == "Tensorboard" and all(b.isEnabled() for b in boxes.boxes.values())
