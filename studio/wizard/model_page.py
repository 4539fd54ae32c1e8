"""Step 3: the base model. The built-in model is preselected; local models and a Hugging Face search
(debounced, in the background, with a plain offline message) are offered beside it, each with its size,
license, context length and whether it fits this computer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.gui.tasks import TaskRunner, TaskState
from studio.gui.widgets import Badge, Banner, wrapped_label
from studio.wizard.base import WizardPage
from studio.wizard.session import WizardSession

SEARCH_DEBOUNCE_MS = 400
FIT_TEXT = {
    "fits": ("Fits", "ok"),
    "fits_4bit": ("Needs 4-bit", "warn"),
    "does_not_fit": ("Too large", "bad"),
}
REF_ROLE = Qt.ItemDataRole.UserRole
UNKNOWN_FIT = "Studio cannot tell: this model's details are unknown."


@dataclass(frozen=True)
class ModelRow:
    """One model as the page shows it; built in the background so the GUI thread only draws."""

    ref: str
    name: str
    source: str  # builtin, hf_cache, folder or hub (not on this computer yet)
    size: str
    license: str
    context: str
    fit_status: str
    fit_reason: str


def _human_params(n: int | None) -> str:
    if not n:
        return "?"
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def _rows(entries: list[Any], hardware: Any) -> list[ModelRow]:
    from studio.engine.hardware import probe
    from studio.engine.models.catalog import fit_verdict

    hardware = hardware or probe()
    rows = []
    for entry in entries:
        verdict = fit_verdict(entry.facts, hardware) if entry.facts is not None else None
        rows.append(
            ModelRow(
                ref=entry.ref,
                name=entry.name,
                source=entry.source,
                size=_human_params(entry.n_params),
                license=entry.license or "unknown",
                context=f"{entry.context_length:,} tokens" if entry.context_length else "?",
                fit_status=verdict.status if verdict else "",
                fit_reason=verdict.reason if verdict else UNKNOWN_FIT,
            )
        )
    return rows


def _list_local(task: TaskState, hardware: Any) -> list[ModelRow]:
    from studio.engine.models.catalog import list_local_models

    task.set_status("Looking for models on this computer")
    return _rows(list_local_models(), hardware)


def _search(task: TaskState, query: str, hardware: Any) -> list[ModelRow]:
    from studio.engine.models.catalog import search_hub

    task.set_status(f"Searching Hugging Face for “{query}”")
    return _rows(search_hub(query, limit=20), hardware)


class ModelPage(WizardPage):
    title = "Choose a base model"
    intro = (
        "The base model is what your training starts from. The built-in model is small and runs on "
        "any computer; larger models learn more but need more memory and time."
    )

    def __init__(self, session: WizardSession, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.local_runner = TaskRunner(self)
        self.search_runner = TaskRunner(self)
        self.local_rows: list[ModelRow] = []

        search_row = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search Hugging Face (for example: qwen 0.5b instruct)")
        self.search.setAccessibleName("Search Hugging Face for a model")
        self.search.setClearButtonEnabled(True)
        search_row.addWidget(self.search)
        self.body.addLayout(search_row)
        self.search_status = wrapped_label(name="muted")
        self.body.addWidget(self.search_status)

        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Model", "Size", "License", "Context", "On this computer"])
        self.tree.setAccessibleName("Available models")
        self.tree.setMinimumHeight(260)
        self.tree.setAlternatingRowColors(True)
        header = self.tree.header()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for col in range(1, 5):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(False)
        self.groups = {
            key: QTreeWidgetItem(self.tree, [label])
            for key, label in (
                ("builtin", "Built-in"),
                ("local", "On this computer"),
                ("hub", "Hugging Face"),
            )
        }
        for group in self.groups.values():
            group.setFlags(Qt.ItemFlag.ItemIsEnabled)
            group.setFirstColumnSpanned(True)
            group.setExpanded(True)
            group.setHidden(True)  # shown once it has models
        self.body.addWidget(self.tree)

        self.details = QGroupBox("Selected model")
        details = QVBoxLayout(self.details)
        badge_row = QHBoxLayout()
        self.name_label = wrapped_label(name="sectionTitle", selectable=True)
        self.badge = Badge()
        badge_row.addWidget(self.name_label, 1)
        badge_row.addWidget(self.badge, 0, Qt.AlignmentFlag.AlignTop)
        details.addLayout(badge_row)
        self.reason = wrapped_label(selectable=True)
        details.addWidget(self.reason)
        self.body.addWidget(self.details)
        self.banner = Banner()
        self.body.addWidget(self.banner)
        self.body.addStretch(1)

        self.debounce = QTimer(self)
        self.debounce.setSingleShot(True)
        self.debounce.setInterval(SEARCH_DEBOUNCE_MS)
        self.debounce.timeout.connect(self._run_search)
        self.search.textChanged.connect(lambda _text: self.debounce.start())
        self.search_runner.statusChanged.connect(self.search_status.setText)
        self.search_runner.finished.connect(self._on_search)
        self.search_runner.failed.connect(self._on_search_failed)
        self.local_runner.finished.connect(self._on_local)
        self.local_runner.failed.connect(self.banner.show_error)
        self.tree.currentItemChanged.connect(self._on_current)
        session.hardwareChanged.connect(self._load_local)
        self._loaded = False

    def enter(self) -> None:
        if not self._loaded:
            self._load_local()
        self.tree.setFocus(Qt.FocusReason.OtherFocusReason)

    def _load_local(self) -> None:
        if not self.isVisible() and not self._loaded:
            return
        self._loaded = True
        hardware = self.session.hardware
        self.local_runner.start(
            lambda task: _list_local(task, hardware), "looking for models on this computer"
        )

    def _run_search(self) -> None:
        query = self.search.text().strip()
        if not query:
            self.search_runner.cancel()
            self._fill("hub", [])
            self.search_status.setText("")
            return
        hardware = self.session.hardware
        self.search_runner.start(lambda task: _search(task, query, hardware), "searching Hugging Face")

    def _on_local(self, rows: list[ModelRow]) -> None:
        self.local_rows = rows
        self._fill("builtin", [r for r in rows if r.source == "builtin"])
        self._fill("local", [r for r in rows if r.source != "builtin"])
        self._select(self.session.state.model_ref)

    def _on_search(self, rows: list[ModelRow]) -> None:
        self._fill("hub", rows)
        self.search_status.setText(
            f"{len(rows)} models found on Hugging Face. "
            "Studio can train a Hub model once it is downloaded to this computer."
            if rows
            else "No text-generation models match this search."
        )

    def _on_search_failed(self, error: object) -> None:
        self._fill("hub", [])
        why = getattr(error, "why", "")
        self.search_status.setText(f"{getattr(error, 'what', error)} {why}".strip())

    def _fill(self, group_key: str, rows: list[ModelRow]) -> None:
        group = self.groups[group_key]
        group.takeChildren()
        for row in rows:
            text, _kind = FIT_TEXT.get(row.fit_status, ("Unknown", "info"))
            item = QTreeWidgetItem(group, [row.name, row.size, row.license, row.context, text])
            item.setData(0, REF_ROLE, row)
            item.setToolTip(0, row.ref)
            item.setToolTip(4, row.fit_reason)
        group.setHidden(not rows)

    def _select(self, ref: str) -> None:
        from studio.engine.models.builtin import is_builtin

        for group in self.groups.values():
            for i in range(group.childCount()):
                row: ModelRow = group.child(i).data(0, REF_ROLE)
                if row.ref == ref or (is_builtin(ref) and is_builtin(row.ref)):
                    self.tree.setCurrentItem(group.child(i))
                    return

    def _on_current(self, item: QTreeWidgetItem | None) -> None:
        row = item.data(0, REF_ROLE) if item is not None else None
        if not isinstance(row, ModelRow):
            return
        self.session.update(model_ref=row.ref)
        text, kind = FIT_TEXT.get(row.fit_status, ("Fit not known yet", "info"))
        self.name_label.setText(f"{row.name}  ·  {row.size} parameters  ·  license {row.license}")
        self.badge.setText(text)
        self.badge.set_kind(kind)
        self.badge.setAccessibleName(f"Fit on this computer: {text}")
        self.reason.setText(row.fit_reason)
        self.completeChanged.emit()

    def selected(self) -> ModelRow | None:
        item = self.tree.currentItem()
        row = item.data(0, REF_ROLE) if item is not None else None
        return row if isinstance(row, ModelRow) else None

    def blocker(self) -> str | None:
        row = self.selected()
        if row is None:
            return "Choose a model from the list (the built-in model works on every computer)."
        if row.fit_status == "does_not_fit":
            return f"{row.name} is too large for this computer: {row.fit_reason}"
        if row.source == "hub":
            return (
                f"{row.name} is not on this computer yet. Download it first "
                f"(for example: hf download {row.ref}), then pick it under “On this computer”."
            )
        return None

    def shutdown(self) -> None:
        self.debounce.stop()
        self.local_runner.shutdown()
        self.search_runner.shutdown()
