"""The review step's "Train on a rented GPU": the offers come from a fake RunPod on 127.0.0.1 through the real
SDK, each with its time and cost; the budget defaults to 1.5x the chosen offer's estimate and a lower one is
refused with the figure; no key, no network and no GPU that fits are said plainly."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from studio.engine.cloud import save_api_key
from studio.wizard.rented_gpu import COLUMNS, suggested_budget
from studio.wizard.state import WizardState
from tests.cloud_server import GOOD_KEY, FakeGpu, closed_port_url, fake_runpod

pytestmark = pytest.mark.slow  # needs the built-in model's config for the planner


@pytest.fixture
def runpod(monkeypatch, studio_home):
    with fake_runpod(monkeypatch) as api:
        yield api


@pytest.fixture
def review(qtbot, make_wizard, tiny_chat_file, builtin_model_dir, runpod):
    wizard = make_wizard(WizardState(onboarding_done=True, profile_id="chatbot", page=4,
                                     dataset_path=str(tiny_chat_file)))
    qtbot.waitUntil(lambda: wizard.session.plan is not None and wizard.index == 4, timeout=60_000)
    page = wizard.page_at(4)
    qtbot.waitUntil(lambda: page.summary.rowCount() > 0, timeout=30_000)
    return wizard, page


def rent(qtbot, click, page):
    box = page.where
    click(box.rented)
    qtbot.waitUntil(lambda: not box.runner.busy, timeout=60_000)
    return box


def table_rows(box) -> list[dict[str, str]]:
    table = box.table
    return [{COLUMNS[c]: table.item(r, c).text() for c in range(table.columnCount())} for r in range(table.rowCount())]


def type_budget(qtbot, box, text: str) -> None:
    box.budget.setFocus()
    box.budget.selectAll()
    qtbot.keyClicks(box.budget, text)
    qtbot.keyClick(box.budget, Qt.Key.Key_Tab)


def test_offers_are_listed_with_time_and_cost_and_the_budget_is_checked(qtbot, click, review, runpod):
    wizard, page = review
    save_api_key("runpod", GOOD_KEY)
    assert page.where.here.isChecked() and not page.where.panel.isVisible()
    assert page.queue_options.isVisible()
    box = rent(qtbot, click, page)
    assert box.panel.isVisible() and box.table.isVisible() and not box.banner.isVisible()
    assert wizard.session.state.train_on == "runpod"
    assert not page.queue_options.isVisible() and not wizard.queue_button.isEnabled()
    rows = table_rows(box)
    estimates = box.report.estimates
    assert len(rows) == len(estimates) >= 4  # the built-in model fits every GPU the fake lists
    first = rows[0]
    assert first["GPU"] == "GeForce RTX 3070" and first["GPU memory"] == "8 GB"
    assert first["Price per hour"] == "$0.07/h" and first["Kind"] == "Spot, community cloud"
    assert first["Training time"].startswith("about ") and " to " in first["Training time"]
    assert first["Cost"].startswith("about $") and " to $" in first["Cost"]
    assert {row["Kind"].split(",")[0] for row in rows} == {"Spot", "On-demand"}
    assert any("gpuTypes(input:" in q for q in runpod.queries)  # prices from the live list

    # The cheapest is chosen, with its budget; another offer brings its own.
    assert box.selected() is estimates[0]
    assert box.budget.value() == pytest.approx(suggested_budget(estimates[0]))
    assert "1.5 times the estimate" in box.budget_hint.text()
    dearest = len(estimates) - 1
    box.table.setFocus()
    click_row(qtbot, box.table, dearest)
    chosen = estimates[dearest]
    assert box.selected() is chosen
    assert box.budget.value() == pytest.approx(suggested_budget(chosen))
    assert suggested_budget(chosen) == pytest.approx(chosen.default_budget)
    assert wizard.next_button.isEnabled() and page.blocker() is None

    # Below the estimate: refused, with the figure to beat, and Launch waits.
    type_budget(qtbot, box, "0.00")
    assert box.budget_note.isVisible()
    assert f"${chosen.cost.expected:.2f}" in box.budget_note.text()
    assert "below the estimated cost" in box.budget_note.text()
    assert not wizard.next_button.isEnabled() and "below the estimated cost" in wizard.message.text()

    type_budget(qtbot, box, "50")
    assert not box.budget_note.isVisible() and wizard.next_button.isEnabled()
    with qtbot.waitSignal(wizard.rentedLaunchRequested, timeout=5000) as launched:
        click(wizard.next_button)
    config, offer, budget = launched.args
    assert offer is chosen and budget == 50.0
    assert config.dataset_path == wizard.session.state.dataset_path and config.profile == "chatbot"
    assert config.quantization == chosen.config.quantization

    # Back to this computer: the queue is offered again and Launch trains here.
    click(box.here)
    assert not box.panel.isVisible() and page.queue_options.isVisible() and wizard.queue_button.isEnabled()
    with qtbot.waitSignal(wizard.launchRequested, timeout=5000):
        click(wizard.next_button)


def click_row(qtbot, table, row: int) -> None:
    table.scrollToItem(table.item(row, 0))
    rect = table.visualItemRect(table.item(row, 0))
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_without_a_key_the_page_says_so_and_opens_the_keys_settings(qtbot, click, review, runpod):
    wizard, page = review
    box = rent(qtbot, click, page)
    assert box.banner.isVisible() and box.banner.title.text() == "No RunPod API key is saved on this computer."
    assert box.keys_button.isVisible() and not box.table.isVisible()
    assert not wizard.next_button.isEnabled()
    click(box.keys_button)
    dialog = page.keys_dialog
    qtbot.waitUntil(dialog.isVisible)
    row = dialog.section.rows["runpod"]
    row.key_edit.setFocus()
    qtbot.keyClicks(row.key_edit, GOOD_KEY)
    click(row.save_button)
    qtbot.waitUntil(lambda: row.has_key, timeout=30_000)
    # Saving the key looks the offers up again by itself.
    qtbot.waitUntil(lambda: box.table.isVisible() and not box.runner.busy, timeout=60_000)
    assert not box.banner.isVisible() and not box.keys_button.isVisible()
    assert wizard.next_button.isEnabled()
    dialog.close()


def test_an_unreachable_provider_gives_the_offline_message(qtbot, click, review, monkeypatch):
    wizard, page = review
    save_api_key("runpod", GOOD_KEY)
    monkeypatch.setenv("RUNPOD_API_BASE_URL", closed_port_url())
    box = rent(qtbot, click, page)
    assert box.banner.title.text() == "Studio cannot reach RunPod right now."
    assert "internet connection" in box.banner.text() and not box.keys_button.isVisible()
    assert wizard.message.text() == "Studio cannot reach RunPod right now."
    click(box.here)  # this computer still works
    assert wizard.next_button.isEnabled()


def test_no_gpu_that_fits_suggests_a_smaller_model(qtbot, click, review, runpod):
    wizard, page = review
    save_api_key("runpod", GOOD_KEY)
    runpod.gpus = [FakeGpu("NVIDIA GeForce GTX 1050", "GTX 1050", 1, 0.05, None)]
    box = rent(qtbot, click, page)
    assert "does not fit on any GPU RunPod offers" in box.banner.title.text()
    assert "smaller model" in box.banner.text() and "1 GB" in box.banner.text()
    assert not wizard.next_button.isEnabled()


def test_looking_up_the_offers_can_be_cancelled(qtbot, click, review, runpod):
    _wizard, page = review
    save_api_key("runpod", GOOD_KEY)
    box = page.where
    click(box.rented)
    assert box.runner.busy and box.cancel_button.isVisible() and box.progress.isVisible()
    assert "Asking RunPod" in box.status.text() or box.status.text() == ""
    click(box.cancel_button)
    qtbot.waitUntil(lambda: not box.runner.busy, timeout=30_000)
    assert "cancelled" in box.banner.title.text()
    assert box.refresh_button.isVisible() and not box.table.isVisible()
    click(box.refresh_button)
    qtbot.waitUntil(lambda: not box.runner.busy and box.table.isVisible(), timeout=60_000)


SHOTS = os.environ.get("STUDIO_SCREENSHOTS")  # a folder: the docs' screenshots are taken (docs/screenshots)


@pytest.mark.skipif(not SHOTS, reason="takes the docs' screenshots only when STUDIO_SCREENSHOTS names a folder")
def test_screenshots_of_the_offers_and_the_keys_settings(qtbot, click, review, runpod):
    from PySide6.QtWidgets import QScrollArea

    wizard, page = review
    save_api_key("runpod", GOOD_KEY)
    box = rent(qtbot, click, page)
    scroll = page.findChild(QScrollArea)
    scroll.ensureWidgetVisible(box.budget_row, 0, 0)
    qtbot.wait(200)
    wizard.grab().save(str(Path(SHOTS) / "review-rented-gpu.png"))
    from studio.gui.cloud_keys import remove_key

    remove_key("runpod")  # the form a first visit shows
    page.open_keys()
    dialog = page.keys_dialog
    qtbot.waitUntil(dialog.isVisible)
    dialog.adjustSize()
    qtbot.wait(200)
    dialog.grab().save(str(Path(SHOTS) / "cloud-keys.png"))
    dialog.close()


def _unexplained(root) -> list[str]:
    """Technical words shown under `root` without a glossary tooltip (as tests/gui/test_glossary_terms.py)."""
    from PySide6.QtWidgets import QWidget

    from studio.gui.glossary import buddy_labels, explain_terms, explaining_widget, shown_text, terms_in

    explain_terms(root)
    labels = buddy_labels(root)
    found = []
    for widget in [root, *root.findChildren(QWidget)]:
        text = shown_text(widget)
        if text and widget.isVisible() and terms_in(text) and explaining_widget(widget, labels) is None:
            found.append(f"{type(widget).__name__} {text[:60]!r}")
    return found


def test_the_rented_gpu_screens_are_explained_named_and_uncut(qtbot, click, review, runpod):
    from tests.gui.layout_checks import layout_problems
    from tests.gui.test_screen_reader_names import nameless_controls, tab_traps

    wizard, page = review
    box = rent(qtbot, click, page)  # no key yet: the message and its button
    assert box.keys_button.isVisible()
    save_api_key("runpod", GOOD_KEY)
    click(box.refresh_button)
    qtbot.waitUntil(lambda: not box.runner.busy and box.table.isVisible(), timeout=60_000)
    type_budget(qtbot, box, "0")  # the refusal shown too
    for root in (wizard,):
        assert _unexplained(root) == []
        assert nameless_controls(root) == []
        assert tab_traps(root) == []
        assert layout_problems(root) == []
    page.open_keys()
    dialog = page.keys_dialog
    qtbot.waitUntil(dialog.isVisible)
    row = dialog.section.rows["runpod"]
    assert _unexplained(dialog) == [] and nameless_controls(dialog) == [] and layout_problems(dialog) == []
    click(row.replace_button)
    assert nameless_controls(dialog) == [] and layout_problems(dialog) == []
    dialog.close()


def test_lambda_offers_are_listed_beside_runpods_and_launch_rents_from_lambda(qtbot, click, review, runpod,
                                                                              monkeypatch, tmp_path):
    from tests.engine.cloud.fake_lambda import GOOD_KEY as LAMBDA_KEY
    from tests.engine.cloud.fake_lambda import fake_lambda

    wizard, page = review
    with fake_lambda(monkeypatch, tmp_path) as lam:
        save_api_key("runpod", GOOD_KEY)
        save_api_key("lambda", LAMBDA_KEY)
        box = rent(qtbot, click, page)
        assert box.table.isVisible() and not box.banner.isVisible()
        rows = table_rows(box)
        assert {row["Provider"] for row in rows} == {"RunPod", "Lambda"}
        costs = [item.cost.expected for item in box.report.estimates]
        assert costs == sorted(costs)  # one list, cheapest first, whoever rents it
        lambda_row = next(number for number, row in enumerate(rows) if row["GPU"] == "A10 PCIe")
        assert rows[lambda_row]["Provider"] == "Lambda" and rows[lambda_row]["Kind"] == "On-demand, secure cloud"
        assert rows[lambda_row]["Price per hour"] == "$0.75/h"
        assert "GET /instance-types" in lam.requests and any("gpuTypes" in q for q in runpod.queries)

        box.table.setFocus()
        click_row(qtbot, box.table, lambda_row)
        chosen = box.selected()
        assert chosen.offer.provider == "lambda" and chosen.offer.gpu.id == "gpu_1x_a10"
        assert wizard.session.state.train_on == "lambda"
        with qtbot.waitSignal(wizard.rentedLaunchRequested, timeout=5000) as launched:
            click(wizard.next_button)
        _config, offer, _budget = launched.args
        assert offer is chosen and offer.offer.provider == "lambda"
        assert lam.launched == []  # renting starts on the dashboard, not here


def test_a_provider_that_fails_is_named_above_the_offers_of_the_other(qtbot, click, review, runpod, monkeypatch,
                                                                      tmp_path):
    from tests.engine.cloud.fake_lambda import fake_lambda

    wizard, page = review
    with fake_lambda(monkeypatch, tmp_path):
        save_api_key("runpod", GOOD_KEY)
        save_api_key("lambda", "secret_wrong")
        box = rent(qtbot, click, page)
        assert box.table.isVisible() and {row["Provider"] for row in table_rows(box)} == {"RunPod"}
        assert box.banner.isVisible() and box.banner.title.text() == "Lambda refused the API key."
        assert "from RunPod" in box.banner.text()
        assert wizard.next_button.isEnabled()  # the RunPod offers can be rented
