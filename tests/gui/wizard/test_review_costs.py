"""The electricity price and grid intensity set in the settings step give the review its cost and carbon."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

from studio.engine.energy import COUNTRIES, load_settings
from studio.wizard.state import WizardState

pytestmark = pytest.mark.slow  # needs the built-in model's config for the planner


@pytest.fixture
def settings(qtbot, make_wizard, tiny_chat_file, builtin_model_dir):
    wizard = make_wizard(WizardState(onboarding_done=True, profile_id="chatbot", page=3,
                                     dataset_path=str(tiny_chat_file)))
    qtbot.waitUntil(lambda: wizard.session.plan is not None, timeout=60_000)
    return wizard, wizard.page_at(3)


def type_value(qtbot, spin, text: str) -> None:
    """Select what the box holds and type a new value, then leave it, as a person does."""
    spin.setFocus()
    spin.selectAll()
    qtbot.keyClicks(spin, text)
    qtbot.keyClick(spin, Qt.Key.Key_Tab)


def review_figures(wizard) -> dict[str, str]:
    review = wizard.page_at(4)
    return {label.accessibleName(): label.text() for label in review.summary_box.findChildren(QLabel)
            if label.accessibleName() in {"Energy", "Cost", "Carbon", "Training time"}}


def test_a_price_gives_a_cost_with_a_range_in_the_review(qtbot, click, settings):
    wizard, page = settings
    box = page.electricity
    germany = box.country.findData("DE")
    box.country.setCurrentIndex(germany)
    box.country.activated.emit(germany)
    assert box.price.value() == pytest.approx(COUNTRIES["DE"][1]) and box.grid.value() == COUNTRIES["DE"][0]
    type_value(qtbot, box.price, "0.500")
    type_value(qtbot, box.grid, "300")
    saved = load_settings()
    assert (saved.price_per_kwh, saved.currency, saved.grid_g_per_kwh) == (0.5, "EUR", 300.0)
    assert page.estimate_labels["Cost"].text().startswith("about €")

    click(wizard.next_button)
    figures = review_figures(wizard)
    cost, energy, carbon = figures["Cost"], figures["Energy"], figures["Carbon"]
    assert cost.startswith("about €") and " to €" in cost and "€0.50 per kWh" in cost
    assert "free" not in cost.lower()
    assert energy.startswith("about ") and "Wh" in energy and " to " in energy
    assert "CO2" in carbon and "300 g per kWh" in carbon and " to " in carbon
    amount = float(cost.split("€")[1].split(" ")[0])
    assert amount > 0


def test_a_zero_price_reads_free(qtbot, click, settings):
    wizard, page = settings
    type_value(qtbot, page.electricity.price, "0")
    assert load_settings().free
    assert page.estimate_labels["Cost"].text().startswith("Free")
    click(wizard.next_button)
    figures = review_figures(wizard)
    assert figures["Cost"].startswith("Free")
    assert "CO2" in figures["Carbon"]  # free electricity still has a carbon footprint
