"""Drive the wizard as a person would: real engine, real built-in model's tokenizer, real planner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from studio.engine.config import TrainConfig
from studio.engine.models.builtin import is_builtin
from studio.wizard.state import WizardState

CHECK_TIMEOUT_MS = 120_000


def drop_file(widget, path: Path) -> None:
    """A real drag-enter then drop, with the file's URL in the mime data, as the desktop sends it."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, drop)


def click(qtbot, widget) -> None:
    assert widget.isVisible() and widget.isEnabled(), widget.text() if hasattr(widget, "text") else widget
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def wait_next_enabled(qtbot, wizard, timeout: int = CHECK_TIMEOUT_MS) -> None:
    qtbot.waitUntil(lambda: wizard.next_button.isEnabled(), timeout=timeout)


@pytest.mark.slow
def test_whole_wizard_from_card_to_launch(qtbot, make_wizard, tiny_chat_file, builtin_model_dir):
    wizard = make_wizard()
    assert wizard.outer.currentWidget() is wizard.onboarding
    click(qtbot, wizard.onboarding.own)

    profile_page = wizard.page_at(0)
    qtbot.waitUntil(lambda: bool(profile_page.cards), timeout=30_000)  # read in the background
    assert not wizard.next_button.isEnabled() and "choose a use case" in wizard.message.text().lower()
    card = next(c for c in profile_page.cards if c.profile.id == "qa")
    qtbot.mouseClick(card, Qt.MouseButton.LeftButton)
    assert card.selected and profile_page.details.isVisible()
    click(qtbot, wizard.next_button)

    dataset_page = wizard.page_at(1)
    assert wizard.page is dataset_page
    assert "data file" in wizard.message.text()
    drop_file(dataset_page.drop, tiny_chat_file)
    assert dataset_page.runner.busy and not wizard.next_button.isEnabled()
    wait_next_enabled(qtbot, wizard)
    report = wizard.session.report
    assert report.usable and report.rows_usable == 60
    assert dataset_page.banner.title.text().startswith("Ready: 60 of 60")
    assert dataset_page.plot is not None and dataset_page.plot.isVisible()
    preview = dataset_page.preview.toHtml()
    assert "plus" in preview and "background" in preview  # the trained answer is highlighted
    click(qtbot, wizard.next_button)

    model_page = wizard.page_at(2)
    qtbot.waitUntil(lambda: model_page.selected() is not None, timeout=60_000)
    assert model_page.selected().source == "builtin"
    assert model_page.badge.text() == "Fits"
    click(qtbot, wizard.next_button)

    settings_page = wizard.page_at(3)
    wait_next_enabled(qtbot, wizard, timeout=60_000)
    assert wizard.session.plan is not None
    assert all(label.text().startswith("about") for name, label in settings_page.estimate_labels.items()
               if name != "Cost")
    click(qtbot, wizard.next_button)

    review_page = wizard.page_at(4)
    assert wizard.page is review_page and wizard.next_button.text() == "&Launch training"
    assert len(review_page.alternative_boxes) == 2
    with qtbot.waitSignal(wizard.launchRequested, timeout=5000) as launched:
        click(qtbot, wizard.next_button)
    config = launched.args[0]
    assert isinstance(config, TrainConfig)
    TrainConfig.from_dict(config.model_dump(mode="json"))  # round-trips as a valid config
    assert Path(config.dataset_path) == tiny_chat_file
    assert config.profile == "qa" and is_builtin(config.base_model)
    assert config == wizard.session.final_config()


@pytest.mark.slow
def test_invalid_data_blocks_next_with_a_message_in_the_page(qtbot, make_wizard, tmp_path, builtin_model_dir):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(json.dumps({"foo": i, "bar": [i]}) for i in range(20)) + "\n", encoding="utf-8")
    wizard = make_wizard(WizardState(onboarding_done=True, profile_id="chatbot", page=1))
    page = wizard.page_at(1)
    assert wizard.page is page
    drop_file(page.drop, bad)
    qtbot.waitUntil(lambda: not page.runner.busy, timeout=CHECK_TIMEOUT_MS)
    assert not wizard.next_button.isEnabled()
    assert page.banner.isVisible() and page.banner.title.text() == "This data cannot be used yet."
    assert "cannot be used" in wizard.message.text()
    assert page.issue_widgets and any(w.issue.severity == "error" for w in page.issue_widgets)
    wizard.next()  # pressing Next anyway does nothing
    assert wizard.page is page


def test_keyboard_moves_between_cards_and_chooses(qtbot, make_wizard):
    wizard = make_wizard(WizardState(onboarding_done=True))
    page = wizard.page_at(0)
    qtbot.waitUntil(lambda: bool(page.cards), timeout=30_000)
    first = page.cards[0]
    qtbot.waitUntil(first.hasFocus, timeout=5000)  # the first card takes the focus once it is shown
    qtbot.keyClick(first, Qt.Key.Key_Right)
    assert page.cards[1].hasFocus() and page.cards[1].selected
    qtbot.keyClick(page.cards[1], Qt.Key.Key_Down)
    assert page.cards[4].selected and wizard.session.state.profile_id == page.cards[4].profile.id
    qtbot.keyClick(page.cards[4], Qt.Key.Key_Left)
    qtbot.keyClick(page.cards[3], Qt.Key.Key_Space)
    assert page.cards[3].selected and sum(c.selected for c in page.cards) == 1
    assert wizard.next_button.isEnabled()
    assert all(c.accessibleName() and c.focusPolicy() == Qt.FocusPolicy.StrongFocus for c in page.cards)


def test_state_is_restored_after_recreating_the_window(qtbot, make_wizard, tiny_chat_file):
    wizard = make_wizard(WizardState(onboarding_done=True))
    qtbot.waitUntil(lambda: bool(wizard.page_at(0).cards), timeout=30_000)
    wizard.page_at(0).select("creative")
    wizard.session.update(dataset_path=str(tiny_chat_file), overrides={"lora_r": 8})
    wizard.go_to(2)
    wizard.shutdown()
    wizard.close()

    again = make_wizard(start=True)  # loads the saved state from the Studio home
    state = again.session.state
    assert (state.profile_id, state.dataset_path, state.overrides, state.page) == (
        "creative", str(tiny_chat_file), {"lora_r": 8}, 2)
    assert again.outer.currentIndex() == 1 and again.index == 2
    qtbot.waitUntil(lambda: bool(again.page_at(0).cards), timeout=30_000)
    assert again.page_at(0).selected_card().profile.id == "creative"


def test_onboarding_quick_start_offers_the_sample_and_builtin_model(qtbot, make_wizard):
    wizard = make_wizard()
    assert wizard.onboarding.quick.isVisible()
    click(qtbot, wizard.onboarding.quick)
    state = wizard.session.state
    assert state.onboarding_done and state.profile_id == "chatbot" and state.model_ref is None
    assert state.dataset_path and Path(state.dataset_path).is_file()
    assert wizard.index == 1
    page = wizard.page_at(1)
    qtbot.waitUntil(lambda: page.check is not None or page.error is not None, timeout=CHECK_TIMEOUT_MS)


@pytest.mark.slow
def test_a_preference_file_trains_with_dpo(qtbot, make_wizard, tmp_path, builtin_model_dir):
    from studio.engine.datasets.validate import MIN_USABLE_EXAMPLES

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"prompt": f"What is {i} plus {i}?", "chosen": f"{i} plus {i} is {2 * i}.",
                                         "rejected": f"No idea about {i}."}) + "\n"
                             for i in range(MIN_USABLE_EXAMPLES + 20)), encoding="utf-8")
    wizard = make_wizard(WizardState(onboarding_done=True, profile_id="chatbot", page=1))
    drop_file(wizard.page_at(1).drop, pairs)
    wait_next_enabled(qtbot, wizard)
    assert wizard.session.report.kind == "preference"
    click(qtbot, wizard.next_button)
    qtbot.waitUntil(lambda: wizard.page_at(2).selected() is not None, timeout=60_000)
    click(qtbot, wizard.next_button)
    wait_next_enabled(qtbot, wizard, timeout=60_000)
    assert wizard.session.final_config().objective == "dpo"
