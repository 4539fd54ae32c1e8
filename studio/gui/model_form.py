"""A form generated from a pydantic model: one editor per field, the field's description as its help text.

Generated rather than hand-written so the advanced settings can never fall behind the config model.
The form does not validate; its owner applies a change through the model and reverts on error.
A list of fixed choices (`list[Literal[...]]`) is a row of checkboxes; the owner may say how each choice is
shown and grey out, with the reason, the ones this computer cannot offer.
"""

from __future__ import annotations

import json
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Gt, Le, Lt
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QLineEdit, QSpinBox, QWidget

from studio.gui.widgets import WhyToggle

AUTO = "automatic"
INT_MAX = 2_147_483_647


def _optional(annotation: Any) -> tuple[Any, bool]:
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], len(args) < len(get_args(annotation))
    return annotation, False


def _bounds(info: FieldInfo) -> tuple[int, int]:
    low, high = 0, INT_MAX
    for item in info.metadata:
        if isinstance(item, Ge):
            low = int(item.ge)
        elif isinstance(item, Gt):
            low = int(item.gt) + 1
        elif isinstance(item, Le):
            high = int(item.le)
        elif isinstance(item, Lt):
            high = int(item.lt) - 1
    return low, high


def label_for(name: str) -> str:
    return name.replace("_", " ").capitalize().replace("Lora", "LoRA").replace(" lr ", " LR ")


def _choices_of(annotation: Any) -> tuple[str, ...] | None:
    """The allowed values of a `list[Literal[...]]` field, else None."""
    args = get_args(annotation)
    if get_origin(annotation) is list and len(args) == 1 and get_origin(args[0]) is Literal:
        return tuple(str(value) for value in get_args(args[0]))
    return None


@dataclass(frozen=True)
class Choice:
    """How one value of a multiple-choice field is offered. `tip` says what it does, or, when `available` is
    False, why it cannot be picked here (a greyed-out box with a reason beats a missing one)."""

    label: str
    tip: str = ""
    available: bool = True


class ChoiceBoxes(QWidget):
    """A checkbox per allowed value of a `list[Literal[...]]` field; its value lists the ticked ones in the
    order the field declares them, so the same choice always gives the same config.

    Signals:
        changed(list): the user ticked or unticked a box (the new value).
    """

    changed = Signal(list)

    def __init__(self, subject: str, choices: Mapping[str, Choice], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._available = {value: choice.available for value, choice in choices.items()}
        self.boxes: dict[str, QCheckBox] = {}
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for value, choice in choices.items():
            box = QCheckBox(choice.label.replace("&", "&&"))  # a lone & would mark a keyboard shortcut
            box.setToolTip(choice.tip)
            box.setAccessibleName(f"{subject}: {choice.label}")
            box.setAccessibleDescription(choice.tip)
            box.setEnabled(choice.available)
            box.toggled.connect(lambda _on: self.changed.emit(self.value()))
            self.boxes[value] = box
            layout.addWidget(box)
        layout.addStretch(1)

    def value(self) -> list[str]:
        return [value for value, box in self.boxes.items() if box.isChecked()]

    def set_value(self, values: Iterable[str]) -> None:
        """Tick `values`; an unavailable choice that is ticked (from a preset) stays enabled so it can be
        unticked, otherwise the settings could not be fixed from here."""
        chosen = set(values)
        for value, box in self.boxes.items():
            box.setChecked(value in chosen)
            box.setEnabled(self._available[value] or value in chosen)


class ModelForm(QWidget):
    """Editors for the fields of a pydantic model class.

    Signals:
        valueChanged(str, object): the user changed one field (name, new value).
    """

    valueChanged = Signal(str, object)  # noqa: N815 - Qt signal naming

    def __init__(
        self,
        model: type[BaseModel],
        skip: frozenset[str] = frozenset(),
        parent: QWidget | None = None,
        choices: Mapping[str, Callable[[str], Choice]] | None = None,
    ) -> None:
        """`choices` describes, per field name, each value of a multiple-choice field (default: its name)."""
        super().__init__(parent)
        self._describe = dict(choices or {})
        self.layout_ = QFormLayout(self)
        self.layout_.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.editors: dict[str, QWidget] = {}
        self.whys: dict[str, WhyToggle] = {}
        self._values: dict[str, Any] = {}
        for name, info in model.model_fields.items():
            if name in skip:
                continue
            editor = self._editor(name, info)
            editor.setAccessibleName(label_for(name))
            editor.setToolTip(info.description or "")
            editor.setAccessibleDescription(info.description or "")
            self.editors[name] = editor
            why = WhyToggle(label_for(name), info.description or "", editor)
            self.whys[name] = why
            self.layout_.addRow(f"{label_for(name)}:", why)

    def set_notes(self, notes: dict[str, str]) -> None:
        """Explain each value (the planner's reasons); fields without a note keep their description."""
        for name, why in self.whys.items():
            if name in notes:
                why.set_explanation(notes[name])

    def _editor(self, name: str, info: FieldInfo) -> QWidget:
        inner, optional = _optional(info.annotation)
        values = _choices_of(inner)
        if values is not None:
            describe = self._describe.get(name, lambda value: Choice(label_for(value)))
            boxes = ChoiceBoxes(label_for(name), {value: describe(value) for value in values})
            boxes.changed.connect(lambda value, n=name: self._emit(n, value))
            return boxes
        if inner is bool:
            box = QCheckBox()
            box.toggled.connect(lambda value, n=name: self._emit(n, value))
            return box
        if get_origin(inner) is Literal:
            combo = QComboBox()
            combo.addItems([str(v) for v in get_args(inner)])
            combo.activated.connect(lambda _i, n=name, c=combo: self._emit(n, c.currentText()))
            return combo
        if inner is int:
            spin = QSpinBox()
            low, high = _bounds(info)
            if optional:
                spin.setRange(low - 1, high)
                spin.setSpecialValueText(AUTO)
            else:
                spin.setRange(low, high)
            spin.setProperty("optional_floor", low - 1 if optional else None)
            spin.editingFinished.connect(lambda n=name, s=spin: self._emit_spin(n, s))
            return spin
        line = QLineEdit()
        line.editingFinished.connect(lambda n=name, e=line, f=inner is float: self._emit_text(n, e.text(), f))
        return line

    def set_values(self, values: dict[str, Any]) -> None:
        """Show `values` without emitting valueChanged."""
        self._values = dict(values)
        for name, editor in self.editors.items():
            value = values.get(name)
            editor.blockSignals(True)
            if isinstance(editor, ChoiceBoxes):
                editor.set_value(value or [])
            elif isinstance(editor, QCheckBox):
                editor.setChecked(bool(value))
            elif isinstance(editor, QComboBox):
                editor.setCurrentText(str(value))
            elif isinstance(editor, QSpinBox):
                editor.setValue(editor.minimum() if value is None else int(value))
            elif isinstance(editor, QLineEdit):
                editor.setText(_to_text(value))
                editor.setCursorPosition(0)
            editor.blockSignals(False)

    def _emit(self, name: str, value: Any) -> None:
        if self._values.get(name) != value:
            self._values[name] = value
            self.valueChanged.emit(name, value)

    def _emit_spin(self, name: str, spin: QSpinBox) -> None:
        floor = spin.property("optional_floor")
        value = None if floor is not None and spin.value() == floor else spin.value()
        self._emit(name, value)

    def _emit_text(self, name: str, text: str, is_float: bool) -> None:
        text = text.strip()
        value: Any
        if not text:
            value = None
        elif is_float:
            try:
                value = float(text)
            except ValueError:
                value = text  # the owner's validation explains what is wrong
        else:
            try:
                value = json.loads(text)
            except ValueError:
                value = text
        self._emit(name, value)


def _to_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, float):
        return f"{value:g}"
    return json.dumps(value)
