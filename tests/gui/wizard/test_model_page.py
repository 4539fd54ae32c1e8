"""The model page: built-in preselected with its facts and fit badge; local models; offline Hub search.
(Downloading a Hub model: test_model_download.py.)"""

from __future__ import annotations

import pytest

from studio.wizard.model_page import SEARCH_DEBOUNCE_MS, ModelRow
from studio.wizard.state import WizardState


@pytest.fixture
def model_page(qtbot, make_wizard):
    wizard = make_wizard(WizardState(onboarding_done=True, profile_id="chatbot", page=2))
    page = wizard.page_at(2)
    qtbot.waitUntil(lambda: page.selected() is not None, timeout=60_000)
    return wizard, page


def test_builtin_is_preselected_with_facts_and_fit(model_page):
    wizard, page = model_page
    row = page.selected()
    assert row.source == "builtin" and row.size == "135M" and row.context != "?"
    assert row.fit_status == "fits" and page.badge.text() == "Fits"
    assert row.fit_reason and page.reason.text() == row.fit_reason
    assert wizard.next_button.isEnabled()


def test_local_folder_models_are_listed(qtbot, model_page, tiny_model_dir):
    _wizard, page = model_page
    with qtbot.waitSignal(page.local_runner.finished, timeout=60_000):
        page._load_local()
    local = [row for row in page.local_rows if row.ref == str(tiny_model_dir)]
    assert len(local) == 1 and local[0].source == "folder" and local[0].fit_status == "fits"
    group = page.groups["local"]
    assert not group.isHidden()
    assert str(tiny_model_dir) in [group.child(i).toolTip(0) for i in range(group.childCount())]


def test_hub_search_is_debounced_and_offline_says_so(qtbot, model_page):
    _wizard, page = model_page
    started = []
    page.search_runner.started.connect(lambda: started.append(1))
    for text in ("q", "qw", "qwen"):
        qtbot.keyClicks(page.search, text[-1])
    assert not started  # nothing yet: the user is still typing
    qtbot.waitUntil(lambda: bool(started), timeout=SEARCH_DEBOUNCE_MS * 5)
    assert len(started) == 1
    qtbot.waitUntil(lambda: not page.search_runner.busy, timeout=20_000)
    assert "cannot search Hugging Face" in page.search_status.text()
    assert page.selected().source == "builtin"  # the choice is untouched


def test_a_hub_model_not_downloaded_blocks_next_and_offers_a_download(qtbot, model_page):
    wizard, page = model_page
    chosen = wizard.session.state.model_ref
    page._on_search([ModelRow("someone/model-7b", "someone/model-7b", "hub", "7.0B", "mit", "4,096 tokens",
                              "fits_4bit", "Needs 4-bit to fit.")])
    hub = page.groups["hub"]
    page.tree.setCurrentItem(hub.child(0))
    assert page.badge.text() == "Needs 4-bit"
    assert not wizard.next_button.isEnabled() and "Press Download to get it" in wizard.message.text()
    assert page.download_button.isVisible() and page.download_button.isEnabled()
    assert wizard.session.state.model_ref == chosen  # the choice changes once the model is on this computer
    qtbot.waitUntil(lambda: not page.size_runner.busy)  # offline: the button goes without a size
    assert page.download_button.text() == "Download"
