"""Settings > cloud GPU providers: a RunPod key typed into a password field, checked against the provider
(a fake RunPod on 127.0.0.1, through the real SDK) and kept in the keyring (in memory here), never shown
again; replaced and removed; a wrong key and an unreachable provider say so plainly."""

from __future__ import annotations

import keyring
import pytest
from PySide6.QtWidgets import QLineEdit

from studio.engine.cloud.keys import KEYRING_USER, keyring_service, load_api_key
from studio.gui.cloud_keys import CloudKeysDialog
from tests.cloud_server import GOOD_KEY, closed_port_url, fake_runpod


@pytest.fixture
def runpod(monkeypatch, studio_home):
    with fake_runpod(monkeypatch) as api:
        yield api


@pytest.fixture
def dialog(qtbot, runpod):
    made = CloudKeysDialog()
    qtbot.addWidget(made)
    made.show()
    yield made
    made.section.shutdown()
    made.close()


def stored() -> str | None:
    return keyring.get_password(keyring_service("runpod"), KEYRING_USER)


def type_key(qtbot, row, key: str) -> None:
    row.key_edit.setFocus()
    row.key_edit.clear()
    qtbot.keyClicks(row.key_edit, key)


def test_a_key_is_checked_saved_and_never_shown_again(qtbot, click, dialog, runpod):
    row = dialog.section.rows["runpod"]
    assert not row.has_key and row.key_edit.isVisible()
    assert row.key_edit.echoMode() is QLineEdit.EchoMode.Password
    assert not row.save_button.isEnabled()
    type_key(qtbot, row, GOOD_KEY)
    click(row.save_button)
    qtbot.waitUntil(lambda: row.has_key, timeout=30_000)
    assert stored() == GOOD_KEY and load_api_key("runpod") == GOOD_KEY
    assert row.saved_label.text() == "A key is saved" and row.saved_label.isVisible()
    assert not row.key_edit.isVisible() and row.key_edit.text() == ""
    assert "accepted the key" in row.banner.text() and "4 kinds of GPU" in row.banner.text()
    shown = " ".join(w.text() for w in dialog.findChildren(QLineEdit)) + row.banner.text()
    assert GOOD_KEY not in shown
    assert any("gpuTypes" in q for q in runpod.queries)

    # A dialog opened later finds it saved, and still does not show it.
    again = CloudKeysDialog()
    qtbot.addWidget(again)
    again.show()
    assert again.section.rows["runpod"].has_key
    again.section.shutdown()
    again.close()


def test_a_saved_key_is_replaced_and_removed(qtbot, click, dialog, runpod):
    row = dialog.section.rows["runpod"]
    type_key(qtbot, row, GOOD_KEY)
    click(row.save_button)
    qtbot.waitUntil(lambda: row.has_key, timeout=30_000)

    click(row.replace_button)
    assert row.key_edit.isVisible() and row.keep_button.isVisible()
    click(row.keep_button)  # changed one's mind: the saved key stays
    assert row.has_key and stored() == GOOD_KEY

    runpod.key = "rpa_second_key"
    click(row.replace_button)
    type_key(qtbot, row, "rpa_second_key")
    click(row.save_button)
    qtbot.waitUntil(lambda: row.has_key, timeout=30_000)
    assert stored() == "rpa_second_key"

    click(row.remove_button)
    assert stored() is None and not row.has_key and row.key_edit.isVisible()
    assert "removed from this computer" in row.banner.text()


def test_a_wrong_key_is_refused_plainly_and_not_saved(qtbot, click, dialog):
    row = dialog.section.rows["runpod"]
    type_key(qtbot, row, "rpa_wrong")
    click(row.save_button)
    qtbot.waitUntil(lambda: row.banner.isVisible() and not row.runner.busy, timeout=30_000)
    assert row.banner.title.text() == "RunPod refused the API key."
    assert "Nothing was created" in row.banner.text()
    assert row.banner.get_help.isVisible()
    assert stored() is None and not row.has_key


def test_an_unreachable_provider_gives_the_offline_message(qtbot, click, dialog, monkeypatch):
    monkeypatch.setenv("RUNPOD_API_BASE_URL", closed_port_url())
    row = dialog.section.rows["runpod"]
    type_key(qtbot, row, GOOD_KEY)
    click(row.save_button)
    qtbot.waitUntil(lambda: row.banner.isVisible() and not row.runner.busy, timeout=30_000)
    assert row.banner.title.text() == "Studio cannot reach RunPod right now."
    assert "internet connection" in row.banner.text()
    assert stored() is None
    assert row.key_edit.text() == GOOD_KEY  # kept in the field, to try again


def test_together_is_listed_as_not_available_yet(dialog):
    texts = {provider: label.text() for provider, label in dialog.section.planned.items()}
    assert set(texts) == {"together"}
    assert all(text.startswith("Not available yet") for text in texts.values())


def test_a_lambda_key_is_checked_with_lambda_and_saved(qtbot, click, dialog, monkeypatch, tmp_path):
    from tests.engine.cloud.fake_lambda import GOOD_KEY as LAMBDA_KEY
    from tests.engine.cloud.fake_lambda import fake_lambda

    assert set(dialog.section.rows) == {"runpod", "lambda"}
    row = dialog.section.rows["lambda"]
    assert row.title() == "Lambda" and not row.has_key
    assert "cloud.lambdalabs.com/api-keys" in row.how.text() and "SSH key" in row.how.text()
    with fake_lambda(monkeypatch, tmp_path) as api:
        type_key(qtbot, row, "secret_wrong")
        click(row.save_button)
        qtbot.waitUntil(lambda: row.banner.isVisible() and not row.runner.busy, timeout=30_000)
        assert row.banner.title.text() == "Lambda refused the API key." and not row.has_key
        type_key(qtbot, row, LAMBDA_KEY)
        click(row.save_button)
        qtbot.waitUntil(lambda: row.has_key, timeout=30_000)
        assert load_api_key("lambda") == LAMBDA_KEY
        assert "Lambda accepted the key" in row.banner.text() and "3 kinds of GPU" in row.banner.text()
        assert "GET /instance-types" in api.requests
    assert not dialog.section.rows["runpod"].has_key  # each provider's key on its own
