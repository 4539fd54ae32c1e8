"""Step 4: the settings. The planner proposes every value with a reason; beginners see four knobs, experts
every field of the config; estimates (time, memory, cost, carbon, with their ranges) follow each change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QLocale, Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QWidget,
)

from studio.engine.config import TrainConfig
from studio.engine.energy import COUNTRIES, WORLD, EnergySettings, save_settings
from studio.engine.errors import StudioError
from studio.engine.tracking import TRACKER_NAMES, tracker_installed
from studio.gui.energy_settings import energy_settings
from studio.gui.model_form import Choice, ModelForm
from studio.gui.widgets import Banner, WhyToggle, wrapped_label
from studio.wizard.base import WizardPage
from studio.wizard.estimates import FIGURES, describe_for_machine, memory
from studio.wizard.session import HIDDEN_FIELDS, LOCKED_FIELDS, WizardSession

QUALITY_LEVELS = (
    ("Faster (smaller adapter)", 0.5),
    ("Balanced (recommended)", 1.0),
    ("Higher quality (larger adapter)", 2.0),
)
LR_LEVELS = (("Gentle", 0.5), ("Recommended", 1.0), ("Strong", 2.0))
PRESET_FILTER = "Settings files (*.json *.yaml *.yml)"


def tracker_choice(name: str) -> Choice:
    """Most trackers are optional add-ons: one that is not installed is shown greyed out with how to get it,
    instead of letting the run fail at launch."""
    label = TRACKER_NAMES.get(name, name)
    if tracker_installed(name):
        return Choice(label, f"Also record this run's progress with {label}.")
    return Choice(
        label,
        f"{label} is not installed on this computer. To use it, install it (pip install {name}) and restart "
        "Studio.",
        available=False,
    )


def country_name(code: str) -> str:
    territory = QLocale.codeToTerritory(code)
    return QLocale.territoryToString(territory) if territory != QLocale.Country.AnyTerritory else code


class ElectricityBox(QGroupBox):
    """The electricity price and how clean the grid is, for the cost and carbon figures; saved at once.

    Signals:
        changed(EnergySettings): the user changed a figure (already saved).
    """

    changed = Signal(object)
    WORLD_LABEL = "Elsewhere (world average)"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Electricity", parent)
        self.settings = energy_settings()
        form = QFormLayout(self)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.country = QComboBox()
        self.country.setAccessibleName("Country or region, for electricity defaults")
        for code in sorted(COUNTRIES, key=country_name):
            self.country.addItem(country_name(code), code)
        self.country.addItem(self.WORLD_LABEL, "")
        self.price = QDoubleSpinBox()
        self.price.setRange(0.0, 1000.0)
        self.price.setDecimals(3)
        self.price.setSingleStep(0.01)
        self.price.setAccessibleName("Electricity price per kWh")
        self.grid = QSpinBox()
        self.grid.setRange(0, 1500)
        self.grid.setSingleStep(10)
        self.grid.setSuffix(" g CO2 per kWh")
        self.grid.setAccessibleName("Carbon intensity of your electricity")
        form.addRow("Country or region:", self.country)
        form.addRow("Price:", self.price)
        form.addRow("Carbon intensity:", self.grid)
        note = QLabel(
            "Studio starts from typical figures for your country (Ember 2023, GlobalPetrolPrices 2024). "
            "Type your own tariff for an exact cost; 0 means your electricity is free (for example solar)."
        )
        note.setWordWrap(True)
        note.setObjectName("muted")
        form.addRow(note)
        self._show(self.settings)
        self.country.activated.connect(self._on_country)
        self.price.editingFinished.connect(self._on_edit)
        self.grid.editingFinished.connect(self._on_edit)

    def _show(self, settings: EnergySettings) -> None:
        for widget in (self.country, self.price, self.grid):
            widget.blockSignals(True)
        index = self.country.findData(settings.country)
        self.country.setCurrentIndex(index if index >= 0 else self.country.count() - 1)
        self.price.setSuffix(f" {settings.currency} per kWh")
        self.price.setValue(settings.price_per_kwh)
        self.grid.setValue(round(settings.grid_g_per_kwh))
        for widget in (self.country, self.price, self.grid):
            widget.blockSignals(False)

    def _on_country(self, index: int) -> None:
        code = str(self.country.itemData(index) or "")
        grid, price, currency = COUNTRIES.get(code, WORLD)
        self._apply(EnergySettings(price, currency, grid, code))

    def _on_edit(self) -> None:
        current = self.settings
        self._apply(EnergySettings(round(self.price.value(), 3), current.currency, float(self.grid.value()),
                                   current.country))

    def _apply(self, settings: EnergySettings) -> None:
        if settings == self.settings:
            return
        self.settings = settings
        save_settings(settings)
        self._show(settings)
        self.changed.emit(settings)


class SettingsPage(WizardPage):
    title = "Training settings"
    intro = (
        "Studio chose these for your data, model and computer. The defaults are a good start; "
        "press “Why?” next to any setting to see the reason."
    )

    def __init__(self, session: WizardSession, parent: QWidget | None = None) -> None:
        super().__init__(session, parent)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setAccessibleName("Choosing settings")
        self.progress.hide()
        self.body.addWidget(self.progress)
        self.banner = Banner()
        self.body.addWidget(self.banner)

        self.estimates_box = QGroupBox("Estimates for this computer")
        self.estimates_form = QFormLayout(self.estimates_box)
        self.estimate_labels: dict[str, Any] = {}
        for label in FIGURES:
            value = wrapped_label(selectable=True)
            value.setAccessibleName(label)
            self.estimate_labels[label] = value
            self.estimates_form.addRow(f"{label}:", value)
        self.fit_note = wrapped_label(name="muted")
        self.estimates_form.addRow(self.fit_note)
        self.body.addWidget(self.estimates_box)
        self.electricity = ElectricityBox()
        self.electricity.changed.connect(lambda _settings: self._refresh())
        self.body.addWidget(self.electricity)

        self.basic_box = QGroupBox("The essentials")
        basic = QFormLayout(self.basic_box)
        basic.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.epochs = QDoubleSpinBox()
        self.epochs.setRange(0.5, 20.0)
        self.epochs.setSingleStep(0.5)
        self.epochs.setDecimals(1)
        self.epochs.setSuffix(" passes over your data")
        self.quality = QComboBox()
        self.quality.addItems([label for label, _ in QUALITY_LEVELS])
        self.lr = QComboBox()
        self.lr.addItems([label for label, _ in LR_LEVELS])
        self.max_length = QSpinBox()
        self.max_length.setRange(64, 32768)
        self.max_length.setSingleStep(64)
        self.max_length.setSuffix(" tokens")
        self.basic_whys: dict[str, WhyToggle] = {}
        for field, label, editor in (
            ("num_epochs", "Training length", self.epochs),
            ("lora_r", "Quality vs speed", self.quality),
            ("learning_rate", "Learning strength", self.lr),
            ("max_length", "Longest example", self.max_length),
        ):
            editor.setAccessibleName(label)
            why = WhyToggle(label, TrainConfig.model_fields[field].description or "", editor)
            self.basic_whys[field] = why
            basic.addRow(f"{label}:", why)
        self.body.addWidget(self.basic_box)
        self._build_preference_box()

        self.advanced_toggle = QCheckBox("Show all settings (advanced)")
        self.advanced_toggle.setAccessibleName("Show all settings")
        self.body.addWidget(self.advanced_toggle)
        self.advanced_box = QGroupBox("All settings")
        self.form = ModelForm(TrainConfig, skip=LOCKED_FIELDS | HIDDEN_FIELDS, choices={"report_to": tracker_choice})
        advanced = QFormLayout(self.advanced_box)
        advanced.addRow(self.form)
        self.advanced_box.hide()
        self.body.addWidget(self.advanced_box)

        presets = QGroupBox("Presets")
        row = QHBoxLayout(presets)
        self.preset_combo = QComboBox()
        self.preset_combo.setAccessibleName("Saved presets")
        self.preset_combo.setMinimumContentsLength(16)
        self.load_preset_button = QPushButton("Load")
        self.save_preset_button = QPushButton("Save as preset…")
        self.import_button = QPushButton("Import…")
        self.export_button = QPushButton("Export…")
        self.load_preset_button.setAccessibleName("Load the selected preset")
        for widget in (
            self.preset_combo,
            self.load_preset_button,
            self.save_preset_button,
            self.import_button,
            self.export_button,
        ):
            row.addWidget(widget)
        row.addStretch(1)
        self.body.addWidget(presets)
        self.body.addStretch(1)

        self.epochs.editingFinished.connect(lambda: self._set("num_epochs", round(self.epochs.value(), 1)))
        self.max_length.editingFinished.connect(lambda: self._set("max_length", self.max_length.value()))
        self.quality.activated.connect(self._on_quality)
        self.lr.activated.connect(self._on_lr)
        self.form.valueChanged.connect(self._set)
        self.advanced_toggle.toggled.connect(self._on_advanced)
        self.load_preset_button.clicked.connect(self._load_preset)
        self.save_preset_button.clicked.connect(self._save_preset)
        self.import_button.clicked.connect(self._import_preset)
        self.export_button.clicked.connect(self._export_preset)
        session.planChanged.connect(self._refresh)
        session.reportChanged.connect(self._on_report)
        session.configChanged.connect(self._refresh)
        session.planFailed.connect(self._on_plan_failed)
        session.planner.progressChanged.connect(lambda f: self.progress.setValue(int(f * 1000)))
        session.planner.busyChanged.connect(self._on_busy)
        self.advanced_toggle.setChecked(session.state.advanced_view)
        self._set_enabled(False)

    def _build_preference_box(self) -> None:
        """Preference training's own choices, shown only when the data holds answers to compare: which method,
        in the objectives file's plain words, and beta with what it does for that method."""
        self.preference_box = QGroupBox("Preference training")
        form = QFormLayout(self.preference_box)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.method = QComboBox()
        self.method.setAccessibleName("Preference training method")
        self.method_note = wrapped_label(name="muted")
        self.beta = QDoubleSpinBox()
        self.beta.setRange(0.01, 10.0)
        self.beta.setSingleStep(0.05)
        self.beta.setDecimals(2)
        self.beta.setAccessibleName("Beta")
        self.beta_why = WhyToggle("Beta", TrainConfig.model_fields["beta"].description or "", self.beta)
        form.addRow("Method:", self.method)
        form.addRow(self.method_note)
        form.addRow("Beta:", self.beta_why)
        self.preference_box.hide()
        self.body.addWidget(self.preference_box)
        self.method.activated.connect(lambda _index: self._set("objective", self.method.currentData()))
        self.beta.editingFinished.connect(lambda: self._set("beta", round(self.beta.value(), 2)))

    def _show_preference(self, config: TrainConfig) -> None:
        from studio.engine.objectives import objective_info, objectives_for_kind

        self.preference_box.setVisible(config.objective != "sft")
        if config.objective == "sft":
            return
        allowed = objectives_for_kind(getattr(self.session.report, "kind", None))
        self.method.blockSignals(True)
        self.method.clear()
        for objective in allowed if config.objective in allowed else (config.objective, *allowed):
            info = objective_info(objective)
            self.method.addItem(info.name, objective)
            self.method.setItemData(self.method.count() - 1, info.suits_when, Qt.ItemDataRole.ToolTipRole)
        self.method.setCurrentIndex(max(0, self.method.findData(config.objective)))
        self.method.blockSignals(False)
        info = objective_info(config.objective)
        self.method.setToolTip(info.suits_when)
        self.method_note.setText(info.suits_when)
        self.beta.blockSignals(True)
        self.beta.setValue(config.beta)
        self.beta.blockSignals(False)
        self.beta.setToolTip(info.beta)
        self.beta_why.set_explanation(info.beta)
        self.beta_why.setEnabled(bool(info.beta))

    # ---- page protocol ---------------------------------------------------------------------------

    def enter(self) -> None:
        self._fill_presets()
        self._plan_if_needed()
        self._refresh()
        self.epochs.setFocus(Qt.FocusReason.OtherFocusReason)

    def _plan_if_needed(self) -> None:
        if self.session.ensure_plan():
            self.banner.hide()

    def _on_report(self) -> None:
        if self.isVisible():
            self._plan_if_needed()
            self.completeChanged.emit()

    def blocker(self) -> str | None:
        data = self.session.data_blocker()
        if data is not None:
            return data
        if self.session.planner.busy:
            return "Studio is still choosing settings. Wait a moment."
        if self.session.plan is None:
            return "Studio could not choose settings yet; see the message on this page."
        try:
            config = self.session.final_config()
            estimates = self.session.estimate(config)
        except StudioError as exc:
            return exc.what
        if not estimates.fits:
            return (
                f"These settings need about {memory(estimates.peak_memory_mb.expected)} of memory but this "
                f"computer has about {memory(estimates.memory_budget_mb)}. "
                "Lower the longest example or choose a smaller model."
            )
        return None

    # ---- display ---------------------------------------------------------------------------------

    def _on_busy(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self._set_enabled(not busy and self.session.plan is not None)
        self.completeChanged.emit()

    def _on_plan_failed(self, error: object) -> None:
        self.banner.show_error(error)
        self.completeChanged.emit()

    def _set_enabled(self, enabled: bool) -> None:
        for widget in (self.basic_box, self.preference_box, self.advanced_box, self.estimates_box):
            widget.setEnabled(enabled)

    def _refresh(self) -> None:
        plan = self.session.plan
        self._set_enabled(plan is not None and not self.session.planner.busy)
        if plan is None:
            for label in self.estimate_labels.values():
                label.setText("…")
            self.completeChanged.emit()
            return
        config = self.session.final_config()
        base = plan.config
        for widget in (self.epochs, self.max_length, self.quality, self.lr):
            widget.blockSignals(True)
        self.epochs.setValue(config.num_epochs)
        self.max_length.setValue(config.max_length)
        self.quality.setCurrentIndex(_nearest(config.lora_r / base.lora_r, QUALITY_LEVELS))
        self.lr.setCurrentIndex(_nearest(config.learning_rate / base.learning_rate, LR_LEVELS))
        for widget in (self.epochs, self.max_length, self.quality, self.lr):
            widget.blockSignals(False)
        for field, why in self.basic_whys.items():
            why.set_explanation(plan.explanations.get(field) or why.label.text())
        self._show_preference(config)
        self.form.set_values(config.model_dump(mode="json"))
        self.form.set_notes(plan.explanations)
        estimates = self.session.estimate(config)
        figures = describe_for_machine(estimates, config, self.session.planned.hardware, self.electricity.settings)
        for label, text in figures.items():
            self.estimate_labels[label].setText(text)
        self.fit_note.setText(
            f"Memory available for training: about {memory(estimates.memory_budget_mb)}. "
            + (
                "These settings fit."
                if estimates.fits
                else "These settings do not fit: see the message below."
            )
        )
        if not estimates.fits:
            self.banner.show_message(
                "bad", "These settings need more memory than this computer has.", self.blocker() or ""
            )
        elif self.banner.objectName() == "banner_bad" and self.banner.title.text().startswith(
            "These settings"
        ):
            self.banner.hide()
        self.completeChanged.emit()

    # ---- edits -----------------------------------------------------------------------------------

    def _set(self, name: str, value: Any) -> None:
        try:
            self.session.set_override(name, value)
        except StudioError as exc:
            self.banner.show_error(exc)
            self._refresh()  # put the last valid value back in the editor

    def _on_quality(self, index: int) -> None:
        plan = self.session.plan
        if plan is not None:
            r = max(1, int(plan.config.lora_r * QUALITY_LEVELS[index][1]))
            self._set("lora_r", r)
            self._set("lora_alpha", min(4096, r * 2))

    def _on_lr(self, index: int) -> None:
        plan = self.session.plan
        if plan is not None:
            self._set("learning_rate", min(1e-2, plan.config.learning_rate * LR_LEVELS[index][1]))

    def _on_advanced(self, shown: bool) -> None:
        self.advanced_box.setVisible(shown)
        self.session.update(advanced_view=shown)

    # ---- presets ---------------------------------------------------------------------------------

    def _fill_presets(self) -> None:
        from studio.engine.config import list_presets

        current = self.preset_combo.currentText()
        self.preset_combo.clear()
        names = list_presets()
        self.preset_combo.addItems(names)
        self.preset_combo.setCurrentText(current)
        self.load_preset_button.setEnabled(bool(names))
        self.export_button.setEnabled(bool(names))

    def apply_preset(self, config: TrainConfig) -> None:
        """Take every setting from a preset except what the other pages chose (data, model, use case)."""
        self.session.replace_overrides(config.model_dump(mode="json"))
        self.banner.show_message("ok", "Preset loaded.")

    def _load_preset(self) -> None:
        from studio.engine.config import load_preset

        try:
            self.apply_preset(load_preset(self.preset_combo.currentText()))
        except StudioError as exc:
            self.banner.show_error(exc)

    def _save_preset(self) -> None:
        from studio.engine.config import save_preset

        config = self.session.final_config()
        if config is None:
            return
        name, ok = QInputDialog.getText(self, "Save as preset", "Name for these settings:")
        if ok and name.strip():
            save_preset(name.strip(), config)
            self._fill_presets()
            self.preset_combo.setCurrentText(name.strip())
            self.banner.show_message("ok", f"Saved the preset “{name.strip()}”.")

    def _import_preset(self) -> None:
        from studio.engine.config import import_preset

        path, _ = QFileDialog.getOpenFileName(self, "Import settings", "", PRESET_FILTER)
        if not path:
            return
        try:
            saved = import_preset(path)
        except StudioError as exc:
            self.banner.show_error(exc)
            return
        self._fill_presets()
        self.preset_combo.setCurrentText(saved.stem)
        self._load_preset()

    def _export_preset(self) -> None:
        from studio.engine.config import export_preset

        name = self.preset_combo.currentText()
        path, _ = QFileDialog.getSaveFileName(self, "Export settings", f"{name}.json", PRESET_FILTER)
        if path:
            try:
                export_preset(name, Path(path))
            except StudioError as exc:
                self.banner.show_error(exc)
                return
            self.banner.show_message("ok", f"Exported “{name}” to {path}.")

    def shutdown(self) -> None:
        self.session.planner.cancel()


def _nearest(ratio: float, levels: tuple[tuple[str, float], ...]) -> int:
    return min(range(len(levels)), key=lambda i: abs(levels[i][1] - ratio))
