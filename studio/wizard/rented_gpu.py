"""The review step's "Where to train": this computer, or a GPU rented for this run from RunPod or Lambda.

For a rented GPU the box asks every provider whose API key is saved (RunPod when none is) for its live
offers in the background (progress, Cancel), and lists together, cheapest first, the ones the planner says
fit (studio.engine.cloud.offers), each with its time, cost, interval and provider. The person picks one and
sets a budget cap (1.5x its estimate unless changed); a cap below the estimate is refused with the figure to
beat. Launch rents from the chosen offer's provider. No key, no network, or no GPU that fits: the engine's
plain message, with a button to the keys settings where a key is what is missing; a provider that fails
while another answers is named above the offers that came.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QButtonGroup,
    QDoubleSpinBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from studio.engine.cloud.providers import PROVIDER_NAMES
from studio.engine.errors import StudioError
from studio.gui.tables import fit_rows
from studio.gui.tasks import TaskRunner, TaskState
from studio.gui.widgets import Banner, wrapped_label
from studio.wizard.estimates import duration, interval_text, memory, money
from studio.wizard.session import WizardSession

PROVIDER = "runpod"  # asked when no provider's key is saved: its message says how to save one
PROVIDERS_TEXT = " or ".join(PROVIDER_NAMES.values())
COLUMNS = ("GPU", "GPU memory", "Price per hour", "Kind", "Training time", "Cost", "Provider")
KEY_CODES = {"cloud_no_key", "cloud_key_refused"}  # errors a saved key fixes
MOST_ROWS = 8


@dataclass
class RentedOffers:
    """The offers of every provider asked, cheapest first, and what went wrong with the others."""

    estimates: list[Any]  # OfferEstimate, each naming its provider
    problems: list[StudioError] = field(default_factory=list)


def providers_with_keys() -> list[str]:
    """The providers whose API key is saved here; a keyring that cannot be read counts as none saved."""
    from studio.gui.cloud_keys import saved_key

    found = []
    for provider in PROVIDER_NAMES:
        try:
            if saved_key(provider):
                found.append(provider)
        except StudioError:
            continue
    return found


def _fetch_offers(task: TaskState, facts: Any, profile_id: str | None, stats: Any, overrides: dict[str, Any],
                  dataset: str | None) -> RentedOffers:
    """The live offers for this run from every provider with a saved key (a few requests each; nothing is
    rented). When none answers with an offer, the first provider's refusal is the error."""
    from pathlib import Path

    from studio.engine.cloud.offers import offers
    from studio.engine.profiles import get_profile

    asked = providers_with_keys() or [PROVIDER]
    estimates: list[Any] = []
    problems: list[StudioError] = []
    for number, provider in enumerate(asked):
        task.report(f"Asking {PROVIDER_NAMES[provider]} which GPUs it rents out and what they cost",
                    0.1 + 0.8 * number / len(asked))
        try:
            report = offers(provider, facts, get_profile(profile_id), stats,
                            dataset=Path(dataset) if dataset else None, overrides=overrides)
        except StudioError as error:
            problems.append(error)
            continue
        finally:
            task.check()
        estimates.extend(report.estimates)
    if not estimates:
        raise problems[0]
    estimates.sort(key=lambda item: item.cost.expected)
    return RentedOffers(estimates, problems)


def suggested_budget(estimate: Any) -> float:
    """The offer's default cap (1.5x its estimate), never rounded below the estimate for a run of a few cents."""
    return max(float(estimate.default_budget), math.ceil(estimate.cost.expected * 100) / 100)


def dollars(amount: float) -> str:
    """US dollars; a run of a few cents keeps a third decimal, so its range does not read "$0.00 to $0.01"."""
    return f"${amount:.3f}" if 0 < abs(amount) < 0.1 else money(amount)


def kind_text(estimate: Any) -> str:
    price = estimate.offer.price
    return f"{'Spot' if price.spot else 'On-demand'}, {price.cloud} cloud"


def gpu_text(estimate: Any) -> str:
    return str(estimate.offer.gpu.name).removeprefix("NVIDIA ")


def provider_text(estimate: Any) -> str:
    return PROVIDER_NAMES.get(estimate.offer.provider, str(estimate.offer.provider))


class RentedGpuBox(QGroupBox):
    """Signals:
    changed(): the place to train, the chosen offer or the budget changed (Launch may be allowed or not).
    keysRequested(): the person wants to save an API key.
    """

    changed = Signal()
    keysRequested = Signal()  # noqa: N815 - Qt signal naming

    def __init__(self, session: WizardSession, parent: QWidget | None = None) -> None:
        super().__init__("Where to train", parent)
        self.session = session
        self.report: Any = None
        self.error: StudioError | None = None
        self._fetched_for: Any = None  # what the listed offers were planned for
        self.runner = TaskRunner(self)
        layout = QVBoxLayout(self)
        choices = QHBoxLayout()
        self.here = QRadioButton("On this computer")
        self.here.setAccessibleName("Train on this computer")
        self.rented = QRadioButton(f"On a rented GPU ({PROVIDERS_TEXT})")
        self.rented.setAccessibleName("Train on a rented GPU")
        self.group = QButtonGroup(self)
        for button in (self.here, self.rented):
            self.group.addButton(button)
            choices.addWidget(button)
        choices.addStretch(1)
        layout.addLayout(choices)

        self.panel = QWidget()
        panel = QVBoxLayout(self.panel)
        panel.setContentsMargins(0, 0, 0, 0)
        about = QHBoxLayout()
        about.addWidget(wrapped_label(
            "Studio rents the machine from your account with the provider for this run only, sends it the run, "
            "watches it from the dashboard, brings the trained adapter back and switches the machine off. "
            "Prices are the provider's, per hour.", name="muted"), 1)
        panel.addLayout(about)
        fetch = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setRange(0, 0)  # the provider does not say how far along it is
        self.progress.setTextVisible(False)
        self.progress.setAccessibleName("Looking up the offers")
        self.status = QLabel()
        self.status.setObjectName("muted")
        self.status.setAccessibleName("What Studio is doing")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setAccessibleName("Cancel looking up the offers")
        self.refresh_button = QPushButton("Look again")
        self.refresh_button.setAccessibleName("Ask the providers for their offers again")
        fetch.addWidget(self.progress, 1)
        fetch.addWidget(self.status, 2)
        fetch.addWidget(self.cancel_button)
        about.addWidget(self.refresh_button, 0, Qt.AlignmentFlag.AlignTop)
        self.fetch_row = QWidget()
        self.fetch_row.setLayout(fetch)
        fetch.setContentsMargins(0, 0, 0, 0)
        panel.addWidget(self.fetch_row)
        self.banner = Banner()
        panel.addWidget(self.banner)
        keys_row = QHBoxLayout()
        self.keys_button = QPushButton("Save an API key…")
        self.keys_button.setAccessibleName(f"Open the settings to save a {PROVIDERS_TEXT} API key")
        keys_row.addWidget(self.keys_button)
        keys_row.addStretch(1)
        self.keys_row = QWidget()
        self.keys_row.setLayout(keys_row)
        keys_row.setContentsMargins(0, 0, 0, 0)
        self.keys_row.hide()
        panel.addWidget(self.keys_row)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setAccessibleName("GPU offers")
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTabKeyNavigation(False)  # Tab moves on to the next control; arrows move in it
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.hide()
        panel.addWidget(self.table)

        self.budget_row = QWidget()
        budget = QHBoxLayout(self.budget_row)
        budget.setContentsMargins(0, 0, 0, 0)
        label = QLabel("Budget cap:")
        self.budget = QDoubleSpinBox()
        self.budget.setPrefix("$")
        self.budget.setDecimals(2)
        self.budget.setRange(0.0, 100_000.0)
        self.budget.setSingleStep(0.5)
        self.budget.setAccessibleName("Budget cap in US dollars")
        label.setBuddy(self.budget)
        self.budget_hint = QLabel()
        self.budget_hint.setObjectName("muted")
        self.budget_hint.setAccessibleName("Suggested budget")
        budget.addWidget(label)
        budget.addWidget(self.budget)
        budget.addWidget(self.budget_hint, 1)
        self.budget_row.hide()
        panel.addWidget(self.budget_row)
        self.budget_note = wrapped_label(name="blocker")
        self.budget_note.setAccessibleName("Why the budget is refused")
        self.budget_note.hide()
        panel.addWidget(self.budget_note)
        self.panel.hide()
        layout.addWidget(self.panel)

        self.here.setChecked(session.state.train_on not in PROVIDER_NAMES)
        self.rented.setChecked(session.state.train_on in PROVIDER_NAMES)
        self.rented.toggled.connect(self._on_where)
        self.refresh_button.clicked.connect(self.fetch)
        self.cancel_button.clicked.connect(self.runner.cancel)
        self.keys_button.clicked.connect(self.keysRequested)
        self.runner.statusChanged.connect(self.status.setText)
        self.runner.busyChanged.connect(self._on_busy)
        self.runner.finished.connect(self._on_offers)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(self._on_cancelled)
        self.table.itemSelectionChanged.connect(self._on_selected)
        self.budget.valueChanged.connect(lambda _value: self._check_budget())
        self._on_busy(False)

    # ---- what the review page asks ---------------------------------------------------------------------

    @property
    def renting(self) -> bool:
        return self.rented.isChecked()

    def selected(self) -> Any:
        """The chosen OfferEstimate, or None."""
        rows = self.table.selectionModel().selectedRows()
        if self.report is None or not rows:
            return None
        return self.report.estimates[rows[0].row()]

    def budget_value(self) -> float:
        return round(self.budget.value(), 2)

    def blocker(self) -> str | None:
        """Why Launch cannot rent yet, or None (always None when training here)."""
        if not self.renting:
            return None
        if self.runner.busy:
            return "Studio is asking the providers for their offers."
        if self.error is not None:
            return self.error.what
        if self.selected() is None:
            return "Choose a GPU offer to rent, or train on this computer."
        return self._budget_refusal()

    def refresh(self) -> None:
        """The page was shown or the settings changed: the offers are looked up again when they are stale."""
        self.panel.setVisible(self.renting)
        if self.renting and not self.runner.busy and self._fetched_for != self._wanted():
            self.fetch()

    # ---- internals -------------------------------------------------------------------------------------

    def _wanted(self) -> Any:
        s = self.session.state
        return (s.model_ref, s.profile_id, s.dataset_path, repr(sorted(s.overrides.items())), id(self.session.planned))

    def fetch(self) -> None:
        planned = self.session.planned
        if planned is None:
            return
        s = self.session.state
        facts, stats, overrides, profile, data = planned.facts, planned.stats, dict(s.overrides), s.profile_id, \
            s.dataset_path
        self._fetched_for = self._wanted()
        self.report, self.error = None, None
        self.banner.hide()
        self.keys_row.hide()
        self._fill_table()
        self.runner.start(lambda task: _fetch_offers(task, facts, profile, stats, overrides, data),
                          "looking up the offers of rented GPUs")

    def _on_where(self, renting: bool) -> None:
        earlier = self.session.state.train_on
        self.session.update(train_on=(earlier if earlier in PROVIDER_NAMES else PROVIDER) if renting else "here")
        self.refresh()
        self.changed.emit()

    def _on_busy(self, busy: bool) -> None:
        self.fetch_row.setVisible(busy)
        self.progress.setVisible(busy)
        self.status.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.refresh_button.setVisible(not busy)
        self.changed.emit()

    def _on_offers(self, report: Any) -> None:
        self.report = report
        problems = getattr(report, "problems", [])
        if problems:  # another provider answered: its offers are listed, and this one is named
            listed = sorted({provider_text(item) for item in report.estimates})
            self.banner.show_message("info", problems[0].what,
                                     f"The offers below are from {' and '.join(listed)}.")
        self._fill_table()
        self.changed.emit()

    def _on_failed(self, error: object) -> None:
        self.error = error if isinstance(error, StudioError) else StudioError(what=str(error))
        self.banner.show_error(self.error)
        self.keys_row.setVisible(self.error.code in KEY_CODES)
        self.changed.emit()

    def _on_cancelled(self) -> None:
        self._fetched_for = None
        self.error = StudioError(what="Looking up the offers was cancelled.",
                                 actions=["Press “Look again” to ask again, or train on this computer."],
                                 code="cancelled")
        self.banner.show_message("info", self.error.what, self.error.actions[0])
        self.changed.emit()

    def _fill_table(self) -> None:
        estimates = self.report.estimates if self.report is not None else []
        self.table.blockSignals(True)
        self.table.setRowCount(len(estimates))
        for row, item in enumerate(estimates):
            price = item.offer.price.per_hour
            texts = (gpu_text(item), f"{item.offer.gpu.vram_gb:.0f} GB", f"{money(price)}/h", kind_text(item),
                     interval_text(item.total_time_s, duration), interval_text(item.cost, dollars),
                     provider_text(item))
            for column, text in enumerate(texts):
                cell = QTableWidgetItem(text)
                cell.setToolTip(f"Needs about {memory(item.peak_memory_mb.expected)} of GPU memory, "
                                f"{item.config.method.upper()}" + (", 4-bit" if item.config.quantization == "4bit"
                                                                   else ""))
                self.table.setItem(row, column, cell)
        self.table.blockSignals(False)
        fit_rows(self.table, len(estimates), MOST_ROWS)
        self.table.setVisible(bool(estimates))
        self.budget_row.setVisible(bool(estimates))
        if estimates:
            self.table.selectRow(0)  # the cheapest
        else:
            self.budget_note.hide()

    def _on_selected(self) -> None:
        chosen = self.selected()
        if chosen is None:
            return
        if self.renting:
            self.session.update(train_on=chosen.offer.provider)  # Launch rents from this offer's provider
        suggested = suggested_budget(chosen)
        self.budget.blockSignals(True)
        self.budget.setValue(suggested)
        self.budget.blockSignals(False)
        self.budget_hint.setText(
            f"Suggested {money(suggested)}: 1.5 times the estimate of {dollars(chosen.cost.expected)}. "
            "Studio stops the run and switches the machine off when it is reached.")
        self._check_budget()

    def _budget_refusal(self) -> str | None:
        chosen = self.selected()
        if chosen is None:
            return None
        from studio.engine.cloud.offers import budget_cap

        try:
            budget_cap(chosen, self.budget_value())
        except StudioError as exc:
            return f"{exc.what} {exc.actions[0]}" if exc.actions else exc.what
        return None

    def _check_budget(self) -> None:
        refusal = self._budget_refusal()
        self.budget_note.setText(refusal or "")
        self.budget_note.setVisible(refusal is not None)
        self.changed.emit()

    def shutdown(self) -> None:
        self.runner.shutdown()
