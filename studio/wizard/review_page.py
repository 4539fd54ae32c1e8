"""Step 5: review and launch. A summary of every choice, the warnings that still stand, two alternatives
(faster/cheaper and higher quality) with their own estimates, one click away, where to train (this computer
or a rented GPU, studio.wizard.rented_gpu), and the conditions for a run added to the queue instead of started
now (the wizard's "Add to queue").
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from PySide6.QtCore import QDateTime, Qt, QTime
from PySide6.QtWidgets import (
    QCheckBox,
    QDateTimeEdit,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.engine.errors import StudioError
from studio.gui.energy_settings import energy_settings
from studio.gui.widgets import Banner, wrapped_label
from studio.wizard.base import WizardPage
from studio.wizard.estimates import Alternative, alternatives, describe_for_machine
from studio.wizard.rented_gpu import RentedGpuBox
from studio.wizard.session import LOCKED_FIELDS, WizardSession

METHOD_NAMES = {
    "lora": "LoRA", "qlora": "QLoRA (4-bit)", "dora": "DoRA", "rslora": "rsLoRA", "pissa": "PiSSA",
}


class AlternativeBox(QGroupBox):
    def __init__(
        self, alternative: Alternative, figures: dict[str, str], parent: QWidget | None = None
    ) -> None:
        super().__init__(alternative.title, parent)
        self.alternative = alternative
        layout = QVBoxLayout(self)
        layout.addWidget(wrapped_label(alternative.summary))
        form = QFormLayout()
        for label in ("Training time", "Peak memory", "Cost"):
            form.addRow(f"{label}:", wrapped_label(figures[label], selectable=True))
        layout.addLayout(form)
        self.use = QPushButton("Use these settings")
        self.use.setAccessibleName(f"Use the {alternative.title.lower()} settings")
        layout.addWidget(self.use, 0, Qt.AlignmentFlag.AlignLeft)


class QueueOptions(QGroupBox):
    """When a queued run may start: not before a given time, and only when the computer is idle."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Or add it to the queue", parent)
        layout = QVBoxLayout(self)
        layout.addWidget(wrapped_label(
            "“Add to queue” lines this run up instead of starting it now. Queued runs train one after another, "
            "also while Studio is closed; the queue is at the top of the runs library.", name="muted"))
        row = QHBoxLayout()
        self.later = QCheckBox("Start no earlier than")
        self.start_at = QDateTimeEdit(_next_hour())
        self.start_at.setDisplayFormat("dd MMM yyyy HH:mm")
        self.start_at.setCalendarPopup(True)
        self.start_at.setAccessibleName("Earliest start of the queued run")
        self.start_at.setEnabled(False)
        self.later.toggled.connect(self.start_at.setEnabled)
        row.addWidget(self.later)
        row.addWidget(self.start_at)
        row.addStretch(1)
        layout.addLayout(row)
        self.idle = QCheckBox("Only when the computer is idle (no other training, graphics card mostly free)")
        layout.addWidget(self.idle)

    def conditions(self) -> tuple[datetime | None, bool]:
        """(not before, in local time; only when idle)."""
        start = self.start_at.dateTime().toPython() if self.later.isChecked() else None
        return start, self.idle.isChecked()  # type: ignore[return-value]


def _next_hour() -> QDateTime:
    now = QDateTime.currentDateTime()
    return QDateTime(now.date(), QTime(now.time().hour(), 0)).addSecs(3600)


class ReviewPage(WizardPage):
    title = "Review and launch"
    intro = "Check your choices. Press “Launch training” to start; you can pause or stop at any time."

    def __init__(self, session: WizardSession, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.banner = Banner()
        self.body.addWidget(self.banner)
        self.summary_box = QGroupBox("Summary")
        self.summary = QFormLayout(self.summary_box)
        self.summary.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.body.addWidget(self.summary_box)
        self.warnings_box = QGroupBox("Things to know")
        self.warnings = QVBoxLayout(self.warnings_box)
        self.body.addWidget(self.warnings_box)
        self.alternatives_row = QHBoxLayout()
        self.body.addLayout(self.alternatives_row)
        self.where = RentedGpuBox(session)
        self.body.addWidget(self.where)
        self.queue_options = QueueOptions()
        self.body.addWidget(self.queue_options)
        self.body.addStretch(1)
        self.alternative_boxes: list[AlternativeBox] = []
        self.where.changed.connect(self._on_where)
        self.where.keysRequested.connect(self.open_keys)
        session.configChanged.connect(self._refresh_if_visible)
        session.planChanged.connect(self._refresh_if_visible)
        session.reportChanged.connect(self._on_report)

    def enter(self) -> None:
        self.session.ensure_plan()
        self._refresh()

    def _on_report(self) -> None:
        if self.isVisible():
            self.session.ensure_plan()
            self._refresh()

    def _refresh_if_visible(self) -> None:
        if self.isVisible():
            self._refresh()

    def _refresh(self) -> None:
        self.banner.hide()
        config = self.session.final_config()
        if config is None:
            waiting = self.session.data_blocker() or (
                "Studio is choosing settings." if self.session.planner.busy else "Go back to the settings step."
            )
            self.banner.show_message("info", "The settings are not ready yet.", waiting)
            self.completeChanged.emit()
            return
        self._fill_summary(config)
        self._fill_warnings()
        self._fill_alternatives(config)
        self.where.refresh()
        self._on_where()

    def _on_where(self) -> None:
        """A rented run is launched now, not queued: the queue's conditions are for this computer."""
        self.queue_options.setVisible(not self.where.renting)
        self.completeChanged.emit()

    def rented_launch(self) -> tuple[Any, Any, float] | None:
        """(the config planned for the rented GPU, its OfferEstimate, the budget cap), or None to train here."""
        offer = self.where.selected() if self.where.renting else None
        if offer is None:
            return None
        return self.session.with_choices(offer.config, self.session.state.overrides), offer, self.where.budget_value()

    def open_keys(self) -> None:
        """Settings > cloud GPU providers; the offers are looked up again once a key is saved."""
        from studio.gui.cloud_keys import CloudKeysDialog

        dialog = CloudKeysDialog(self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.section.keyChanged.connect(lambda _provider: self.where.fetch())
        self.keys_dialog = dialog
        dialog.show()

    def _fill_summary(self, config: Any) -> None:
        while self.summary.rowCount():
            self.summary.removeRow(0)
        state, report = self.session.state, self.session.report
        planned = self.session.planned
        from studio.engine.profiles import get_profile

        data = Path(config.dataset_path or "").name
        if report is not None:
            data += f" ({report.rows_usable:,} usable examples)"
        if config.exclude_examples:
            data += f", leaving out {len(config.exclude_examples):,} you excluded after a look at the hardest ones"
        model = getattr(planned.facts, "name", state.model_ref) if planned is not None else state.model_ref
        length = (
            f"{config.max_steps} steps" if config.max_steps else f"{config.num_epochs:g} passes over the data"
        )
        rows = [
            ("Use case", get_profile(config.profile).name),
            ("Data", data),
            ("Base model", str(model)),
            (
                "Method",
                f"{METHOD_NAMES[config.method]}, adapter rank {config.lora_r}, {config.precision} numbers",
            ),
            (
                "Training",
                f"{length}, {config.effective_batch_size} examples per update, "
                f"learning rate {config.learning_rate:g}",
            ),
        ]
        rows.extend(self._figures(config).items())
        for label, text in rows:
            value = wrapped_label(text, selectable=True)
            value.setAccessibleName(label)
            self.summary.addRow(f"{label}:", value)

    def _fill_warnings(self) -> None:
        while self.warnings.count():
            item = self.warnings.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        lines = list(self.session.plan.warnings) if self.session.plan is not None else []
        report = self.session.report
        if report is not None:
            lines.extend(
                f"{issue.message} {issue.suggestion or ''}".strip()
                for issue in report.issues
                if issue.severity == "warning"
            )
        for line in lines or ["Nothing stands in the way."]:
            self.warnings.addWidget(wrapped_label(f"• {line}" if lines else line))

    def _fill_alternatives(self, config: Any) -> None:
        for box in self.alternative_boxes:
            self.alternatives_row.removeWidget(box)
            box.deleteLater()
        self.alternative_boxes = []
        for alternative in alternatives(config):
            box = AlternativeBox(alternative, self._figures(alternative.config))
            box.use.clicked.connect(lambda _c=False, a=alternative: self.use_alternative(a))
            self.alternatives_row.addWidget(box, 1)
            self.alternative_boxes.append(box)

    def _figures(self, config: Any) -> dict[str, str]:
        """Time, memory, energy, cost and carbon for `config`, at the electricity price set in Settings."""
        assert self.session.planned is not None
        return describe_for_machine(self.session.estimate(config), config, self.session.planned.hardware,
                                    energy_settings())

    def use_alternative(self, alternative: Alternative) -> None:
        values = alternative.config.model_dump(mode="json")
        try:
            self.session.replace_overrides({k: v for k, v in values.items() if k not in LOCKED_FIELDS})
        except StudioError as exc:
            self.banner.show_error(exc)
            return
        self._refresh()
        self.banner.show_message("ok", f"Switched to the “{alternative.title}” settings.")

    def blocker(self) -> str | None:
        data = self.session.data_blocker()
        if data is not None:
            return data
        if self.session.final_config() is None:
            return "Go back to the settings step first."
        return self.where.blocker()

    def shutdown(self) -> None:
        self.where.shutdown()
