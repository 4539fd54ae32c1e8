"""The wizard: a step list, the five pages, and Back / Next / Launch (or Add to queue on the last step), with
first-run onboarding in front.

Signals:
    launchRequested(object): the final, validated TrainConfig (dataset_path set) the user chose to run.
    queueRequested(object, object, bool): that TrainConfig to queue instead, the earliest start (a local
        datetime or None) and whether it waits for an idle computer.
    rentedLaunchRequested(object, object, float): Launch on a rented GPU: the TrainConfig planned for it, the
        chosen offer (studio.engine.cloud.offers.OfferEstimate) and the budget cap in US dollars.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from studio.gui.widgets import wrapped_label
from studio.wizard.session import WizardSession
from studio.wizard.state import WizardState

if TYPE_CHECKING:
    from studio.wizard.base import WizardPage

STEP_NAMES = ("Use case", "Your data", "Base model", "Settings", "Review and launch")
# Pages are built when first shown, so the first screen appears without importing the rest.
PAGE_CLASSES = (
    ("studio.wizard.profile_page", "ProfilePage"),
    ("studio.wizard.dataset_page", "DatasetPage"),
    ("studio.wizard.model_page", "ModelPage"),
    ("studio.wizard.settings_page", "SettingsPage"),
    ("studio.wizard.review_page", "ReviewPage"),
)
DATASET_PAGE = 1


class Onboarding(QWidget):
    """The first screen a new user sees: one button to a running training on the sample data."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        outer = QVBoxLayout(self)
        outer.addStretch(1)
        card = QFrame()
        card.setObjectName("card")
        card.setMaximumWidth(760)
        layout = QVBoxLayout(card)
        layout.setContentsMargins(36, 32, 36, 32)
        layout.setSpacing(14)
        icon = QLabel()
        icon.setPixmap(QApplication.windowIcon().pixmap(72, 72))
        icon.setAccessibleName("Studio")
        layout.addWidget(icon)
        title = QLabel("Welcome to Studio")
        title.setObjectName("pageTitle")
        layout.addWidget(title)
        layout.addWidget(wrapped_label(
            "Studio teaches a small language model to do what you show it, right on this computer. "
            "It picks the settings for you and tells you how to fix your data when something is off."
        ))
        layout.addWidget(wrapped_label(
            "New here? Try it first with Studio's sample conversations and its built-in model: "
            "five clicks and a few minutes later you will watch your first model learn.",
            name="muted",
        ))
        buttons = QHBoxLayout()
        self.quick = QPushButton("Try it with the sample data")
        self.quick.setObjectName("primary")
        self.quick.setAccessibleName("Try Studio with the sample data and the built-in model")
        self.quick.setDefault(True)
        self.own = QPushButton("Use my own data")
        self.own.setAccessibleName("Set up training with my own data")
        buttons.addWidget(self.quick)
        buttons.addWidget(self.own)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(card, 3)
        row.addStretch(1)
        outer.addLayout(row)
        outer.addStretch(2)


class Wizard(QWidget):
    launchRequested = Signal(object)  # noqa: N815 - Qt signal naming
    queueRequested = Signal(object, object, bool)  # noqa: N815
    rentedLaunchRequested = Signal(object, object, float)  # noqa: N815

    def __init__(
        self, state: WizardState | None = None, parent: QWidget | None = None, autosave: bool = True
    ) -> None:
        super().__init__(parent)
        self.session = WizardSession(state or WizardState.load(), self, autosave=autosave)
        self.setAccessibleName("Training setup wizard")

        self.steps = QListWidget()
        self.steps.setObjectName("steps")
        self.steps.setAccessibleName("Steps")
        for number, name in enumerate(STEP_NAMES, start=1):
            self.steps.addItem(QListWidgetItem(f"{number}. {name}"))
        self.steps.setFixedWidth(self.steps.sizeHintForColumn(0) + 32)
        self.steps.setCurrentRow(0)  # before signals connect: gaining focus must not pick a step

        self._pages: list[WizardPage | None] = [None] * len(PAGE_CLASSES)
        self.stack = QStackedWidget()
        for _ in PAGE_CLASSES:
            self.stack.addWidget(QWidget())  # replaced by the real page on first use

        self.message = wrapped_label()
        self.message.setAccessibleName("Why you cannot continue yet")
        self.back_button = QPushButton("&Back")
        self.next_button = QPushButton("&Next")
        self.next_button.setDefault(True)
        self.next_button.setObjectName("primary")
        self.queue_button = QPushButton("Add to &queue")
        self.queue_button.setToolTip("Line this run up instead of starting it now; queued runs train one after "
                                     "another.")
        self.queue_button.setAccessibleName("Add to queue")
        self.queue_button.hide()
        nav = QHBoxLayout()
        nav.setContentsMargins(24, 8, 24, 16)
        nav.addWidget(self.message, 1)
        nav.addWidget(self.back_button)
        nav.addWidget(self.queue_button)
        nav.addWidget(self.next_button)

        right = QVBoxLayout()
        right.setContentsMargins(0, 0, 0, 0)
        right.addWidget(self.stack, 1)
        right.addLayout(nav)
        main = QWidget()
        row = QHBoxLayout(main)
        row.setContentsMargins(8, 8, 0, 0)
        row.addWidget(self.steps)
        row.addLayout(right, 1)

        self.onboarding = Onboarding()
        self.outer = QStackedWidget()
        self.outer.addWidget(self.onboarding)
        self.outer.addWidget(main)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.outer)

        self.back_button.clicked.connect(self.back)
        self.next_button.clicked.connect(self.next)
        self.queue_button.clicked.connect(self.add_to_queue)
        self.steps.currentRowChanged.connect(self._on_step_clicked)
        self.onboarding.quick.clicked.connect(self.quick_start)
        self.onboarding.own.clicked.connect(self.start_own)
        self.session.ready.connect(self._on_ready)
        self.session.startFailed.connect(self._on_start_failed)

    # ---- life cycle ------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self.session.is_ready

    def start(self) -> None:
        """Show the first screen at once; the engine loads in the background and the pages follow."""
        for button in (self.onboarding.quick, self.onboarding.own):
            button.setEnabled(self.ready)
        if not self.session.state.onboarding_done:
            self.outer.setCurrentWidget(self.onboarding)
        else:
            self.outer.setCurrentIndex(1)
            self._update_nav()
        if self.ready:
            self._on_ready()
        else:
            self.session.start()

    def _on_ready(self) -> None:
        for button in (self.onboarding.quick, self.onboarding.own):
            button.setEnabled(True)
        if not self.session.state.onboarding_done:
            self.onboarding.quick.setFocus()
            return
        if self.session.state.page > DATASET_PAGE and self.session.state.dataset_path:
            self.page_at(DATASET_PAGE).revalidate()  # later steps rely on a fresh check of the data
        self.go_to(self.session.state.page)

    def _on_start_failed(self, error: object) -> None:
        self.message.setText(f"Studio could not start: {getattr(error, 'what', error)}")
    def shutdown(self) -> None:
        for page in self._pages:
            if page is not None:
                page.shutdown()
        self.session.shutdown()

    def page_at(self, index: int) -> WizardPage:
        """The page at `index`, built on first use (only once the session is ready)."""
        assert self.ready, "pages are built once the engine has loaded"
        page = self._pages[index]
        if page is None:
            module, name = PAGE_CLASSES[index]
            page = getattr(importlib.import_module(module), name)(self.session)
            placeholder = self.stack.widget(index)
            self.stack.insertWidget(index, page)
            self.stack.removeWidget(placeholder)
            placeholder.deleteLater()
            page.completeChanged.connect(self._update_nav)
            self._pages[index] = page
        return page

    @property
    def pages(self) -> list[WizardPage]:
        """Every page, building the ones not shown yet."""
        return [self.page_at(i) for i in range(len(PAGE_CLASSES))]

    def quick_start(self) -> None:
        """Sample data for the default use case and the built-in model; lands on the data check."""
        from studio.engine.datasets import sample_path
        from studio.engine.profiles import DEFAULT_PROFILE

        profile = self.session.state.profile_id or DEFAULT_PROFILE
        self.session.update(
            onboarding_done=True,
            profile_id=profile,
            model_ref=None,
            dataset_path=str(sample_path(profile)),
            column_mapping=None,
        )
        self.outer.setCurrentIndex(1)
        self.go_to(DATASET_PAGE)

    def start_own(self) -> None:
        self.session.update(onboarding_done=True)
        self.outer.setCurrentIndex(1)
        self.go_to(0)

    # ---- navigation ------------------------------------------------------------------------------

    @property
    def index(self) -> int:
        return self.stack.currentIndex()

    @property
    def page(self) -> WizardPage:
        return self.page_at(self.index)

    def go_to(self, index: int) -> None:
        index = max(0, min(index, len(PAGE_CLASSES) - 1))
        page = self.page_at(index)
        self.stack.setCurrentIndex(index)
        self.steps.blockSignals(True)
        self.steps.setCurrentRow(index)
        self.steps.blockSignals(False)
        self.session.update(page=index)
        page.enter()
        self._update_nav()

    def back(self) -> None:
        if self.ready and self.index > 0:
            self.go_to(self.index - 1)

    def next(self) -> None:
        if not self.ready:
            return
        blocker = self.page.blocker()
        if blocker:
            self._update_nav()
            return
        if self.index == len(PAGE_CLASSES) - 1:
            self.launch()
        else:
            self.go_to(self.index + 1)

    def launch(self) -> None:
        config = self.session.final_config()
        if config is None or self.page.blocker() is not None:
            return
        rented = getattr(self.page, "rented_launch", lambda: None)()
        if rented is not None:
            self.rentedLaunchRequested.emit(*rented)
        else:
            self.launchRequested.emit(config)

    def add_to_queue(self) -> None:
        """The same config as Launch, queued with the review page's conditions."""
        config = self.session.final_config()
        if config is None or self.index != len(PAGE_CLASSES) - 1 or self.page.blocker() is not None:
            return
        if self.page.rented_launch() is not None:  # type: ignore[attr-defined]
            return  # a rented GPU is rented now, for this run: the queue trains on this computer
        not_before, when_idle = self.page.queue_options.conditions()  # type: ignore[attr-defined]
        self.queueRequested.emit(config, not_before, when_idle)

    def _on_step_clicked(self, row: int) -> None:
        """Steps may be revisited freely; going forward needs every page before it to be complete."""
        if row < 0 or not self.ready:
            return
        reachable = row <= self.index or all(
            self.page_at(i).blocker() is None for i in range(self.index, row)
        )
        if reachable:
            self.go_to(row)
        else:
            self.steps.blockSignals(True)
            self.steps.setCurrentRow(self.index)
            self.steps.blockSignals(False)

    def _update_nav(self) -> None:
        blocker = self.page.blocker() if self.ready else "Starting Studio…"
        last = self.index == len(PAGE_CLASSES) - 1
        self.back_button.setEnabled(self.index > 0)
        self.next_button.setText("&Launch training" if last else "&Next")
        self.next_button.setAccessibleName("Launch training" if last else "Next step")
        self.next_button.setEnabled(blocker is None)
        renting = last and self.ready and bool(getattr(getattr(self.page, "where", None), "renting", False))
        self.queue_button.setVisible(last)
        self.queue_button.setEnabled(blocker is None and not renting)
        self.message.setText(blocker or "")
        self.message.setObjectName("blocker" if blocker else "muted")
        self.message.style().unpolish(self.message)
        self.message.style().polish(self.message)
