"""Preference tuning from the wizard: the use case on step 1, a pairs file choosing it by itself, a plain file
refused for it in words, and the method and beta explained on the settings step."""

from __future__ import annotations

from PySide6.QtCore import Qt

from studio.engine.datasets import sample_path
from studio.engine.objectives import objective_info
from studio.wizard.state import WizardState
from tests.gui.wizard.test_flow import drop_file
from tests.gui.wizard.test_settings_page import fake_facts

CHECK_TIMEOUT_MS = 120_000


def test_the_use_case_step_offers_making_answers_better(qtbot, make_wizard):
    wizard = make_wizard(WizardState(onboarding_done=True))
    page = wizard.page_at(0)
    qtbot.waitUntil(lambda: bool(page.cards), timeout=30_000)
    card = next(card for card in page.cards if card.profile.id == "preference")
    assert card.profile.name == "Make answers better" and "preference tuning" in card.profile.summary.lower()
    qtbot.mouseClick(card, Qt.MouseButton.LeftButton)
    assert wizard.session.state.profile_id == "preference"


def test_a_pairs_file_dropped_for_a_chatbot_chooses_preference_tuning(qtbot, make_wizard):
    wizard = make_wizard(WizardState(onboarding_done=True, profile_id="chatbot", page=1))
    page = wizard.page_at(1)
    drop_file(page.drop, sample_path("preference"))
    qtbot.waitUntil(lambda: page.check is not None and wizard.session.report is not None, timeout=CHECK_TIMEOUT_MS)
    assert wizard.session.state.profile_id == "preference"
    assert page.banner.objectName() == "banner_ok" and "Make answers better" in page.banner.body.text()
    assert page.blocker() is None and wizard.next_button.isEnabled()


def test_a_file_of_single_answers_is_refused_for_preference_tuning(qtbot, make_wizard):
    wizard = make_wizard(WizardState(onboarding_done=True, profile_id="preference", page=1))
    page = wizard.page_at(1)
    page.set_file(str(sample_path("chatbot")))
    qtbot.waitUntil(lambda: page.check is not None, timeout=CHECK_TIMEOUT_MS)
    assert wizard.session.state.profile_id == "preference"  # the user's choice stands; the data is what misfits
    assert page.banner.objectName() == "banner_bad"
    assert "pairs of a better and a worse answer" in page.banner.body.text()
    assert not wizard.next_button.isEnabled() and "chosen and rejected" in wizard.message.text()


def test_the_settings_step_explains_the_method_and_beta(qtbot, make_wizard):
    wizard = make_wizard(WizardState(onboarding_done=True, profile_id="preference", page=3,
                                     dataset_path=str(sample_path("preference"))), start=False)
    wizard.session.read_facts = fake_facts
    wizard.start()
    qtbot.waitUntil(lambda: wizard.ready, timeout=60_000)
    qtbot.waitUntil(lambda: wizard.session.plan is not None, timeout=CHECK_TIMEOUT_MS)
    page = wizard.page_at(3)
    qtbot.waitUntil(page.preference_box.isVisible, timeout=10_000)
    names = [page.method.itemText(i) for i in range(page.method.count())]
    assert names == [objective_info(o).name for o in ("dpo", "orpo", "kto")]
    assert page.method_note.text() == objective_info("dpo").suits_when
    assert page.beta.value() == 0.1 and "Beta" in page.beta_why.label.text()

    page.method.setFocus()
    qtbot.keyClick(page.method, Qt.Key.Key_Down)  # ORPO, chosen with the keyboard
    assert wizard.session.final_config().objective == "orpo"
    assert page.method_note.text() == objective_info("orpo").suits_when
    page.beta.setFocus()
    page.beta.selectAll()
    qtbot.keyClicks(page.beta, "0.3")
    qtbot.keyClick(page.beta, Qt.Key.Key_Return)
    assert wizard.session.final_config().beta == 0.3
    assert wizard.session.final_config().profile == "preference"
