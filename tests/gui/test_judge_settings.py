"""The Quality judge screen: off by default; a local GGUF file or an OpenAI-compatible endpoint, typed in and
saved to judge.json (the API key to the password store, never the file); Test asks the judge in the
background with progress and Cancel, and says plainly what went wrong. The endpoint is a small http.server on
127.0.0.1 (never the network); the password store is an in-memory keyring."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog, QMenu

from studio.engine.library.judge import KEYRING_SERVICE, KEYRING_USER, load_settings
from studio.gui.judge_settings import JudgeSettingsDialog
from tests.hub_server import MemoryKeyring
from tests.local_http import JsonHandler, serving, url_of


class _Judge(JsonHandler):
    """Answers /v1/chat/completions like a small OpenAI-compatible server: "A" (or `reply`), after `delay_s`."""

    seen: ClassVar[list[dict[str, object]]] = []
    reply: ClassVar[str] = "B"  # the test question shows the wrong answer (5) as A, the right one (4) as B
    delay_s: ClassVar[float] = 0.0

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        body = self.read_json()
        _Judge.seen.append({"path": self.path, "auth": self.headers.get("Authorization", ""), "body": body})
        time.sleep(_Judge.delay_s)
        if self.path != "/v1/chat/completions":
            self.send_json(404, {"error": "Not found"})
            return
        self.send_json(200, {"choices": [{"message": {"content": _Judge.reply}}]})


@pytest.fixture
def endpoint() -> Iterator[str]:
    _Judge.seen, _Judge.reply, _Judge.delay_s = [], "B", 0.0
    with serving(_Judge) as server:
        yield f"{url_of(server)}/v1"


@pytest.fixture
def keyring_store(monkeypatch: pytest.MonkeyPatch) -> MemoryKeyring:
    backend = MemoryKeyring()
    monkeypatch.setattr("keyring.core._keyring_backend", backend)
    return backend


@pytest.fixture
def dialog(qtbot, studio_home: Path, keyring_store: MemoryKeyring) -> Iterator[JudgeSettingsDialog]:
    shown = JudgeSettingsDialog()
    qtbot.addWidget(shown)
    shown.show()
    qtbot.waitExposed(shown)
    yield shown
    shown.runner.shutdown()


def _type(qtbot, widget, text: str) -> None:
    widget.setFocus()
    widget.clear()
    qtbot.keyClicks(widget, text)


def _wait_idle(qtbot, dialog: JudgeSettingsDialog) -> None:
    qtbot.waitUntil(lambda: not dialog.runner.busy, timeout=15_000)


def test_the_judge_is_off_by_default_and_the_screen_explains_it(dialog, click, studio_home):
    assert dialog.kind_buttons["off"].isChecked()
    assert not dialog.gguf_box.isVisible() and not dialog.endpoint_box.isVisible()
    assert not dialog.test_button.isEnabled()  # nothing to test while it is off
    shown = " ".join(label.text() for label in dialog.findChildren(type(dialog.status)))
    assert "second opinion" in shown and "Offline-safe" in shown and "off by default" in shown
    click(dialog.save_button)
    assert json.loads((studio_home / "judge.json").read_text())["kind"] == "off"
    assert "without a judge" in dialog.banner.text()


def test_an_endpoint_is_typed_in_tested_and_saved_with_its_key_in_the_keyring(
        dialog, qtbot, click, endpoint, studio_home, keyring_store):
    click(dialog.kind_buttons["endpoint"])
    assert dialog.endpoint_box.isVisible() and not dialog.gguf_box.isVisible()
    _type(qtbot, dialog.url, endpoint)
    _type(qtbot, dialog.model, "judge-7b")
    _type(qtbot, dialog.api_key, "sk-secret-123")
    click(dialog.test_button)
    assert dialog.progress.isVisible() and dialog.cancel_button.isVisible()
    _wait_idle(qtbot, dialog)
    assert "Test passed" in dialog.banner.text() and "the right one" in dialog.banner.text()
    assert not dialog.progress.isVisible()
    assert _Judge.seen[-1]["path"] == "/v1/chat/completions"
    assert _Judge.seen[-1]["auth"] == "Bearer sk-secret-123"
    assert _Judge.seen[-1]["body"]["model"] == "judge-7b"  # type: ignore[index]

    click(dialog.save_button)
    text = (studio_home / "judge.json").read_text()
    saved = json.loads(text)
    assert saved["kind"] == "endpoint" and saved["url"] == endpoint and saved["model"] == "judge-7b"
    assert "sk-secret" not in text and saved["key_in_keyring"] is True
    assert keyring_store.passwords[(KEYRING_SERVICE, KEYRING_USER)] == "sk-secret-123"
    assert "next quality check uses this judge" in dialog.banner.text()
    assert load_settings().api_key == "sk-secret-123"  # the quality check gets the key from the keyring

    again = JudgeSettingsDialog()
    qtbot.addWidget(again)
    assert again.kind_buttons["endpoint"].isChecked() and again.url.text() == endpoint
    assert again.api_key.text() == "sk-secret-123"


def test_an_unreachable_endpoint_fails_the_test_in_words_with_actions(dialog, qtbot, click, studio_home):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    click(dialog.kind_buttons["endpoint"])
    _type(qtbot, dialog.url, f"http://127.0.0.1:{port}/v1")
    click(dialog.test_button)
    _wait_idle(qtbot, dialog)
    shown = dialog.banner.text()
    assert "The judge could not answer." in shown and "could not be reached" in shown
    assert "• Check the file or the address" in shown and "switch the judge off" in shown
    assert dialog.banner.get_help.isVisible()
    assert not (studio_home / "judge.json").exists()  # testing saves nothing


def test_a_judge_that_does_not_answer_a_or_b_is_reported(dialog, qtbot, click, endpoint):
    _Judge.reply = "I would rather not say"
    click(dialog.kind_buttons["endpoint"])
    _type(qtbot, dialog.url, endpoint)
    click(dialog.test_button)
    _wait_idle(qtbot, dialog)
    assert "not with A, B or TIE" in dialog.banner.text() and "I would rather not say" in dialog.banner.text()


def test_a_slow_test_can_be_cancelled(dialog, qtbot, click, endpoint):
    _Judge.delay_s = 1.5
    click(dialog.kind_buttons["endpoint"])
    _type(qtbot, dialog.url, endpoint)
    click(dialog.test_button)
    qtbot.waitUntil(lambda: bool(_Judge.seen), timeout=10_000)  # the question is on its way
    click(dialog.cancel_button)
    assert dialog.status.text() == "Stopping the test…"
    _wait_idle(qtbot, dialog)
    assert dialog.status.text() == "Test cancelled."
    assert not dialog.banner.isVisible()
    assert dialog.test_button.isEnabled()


def test_a_gguf_file_is_chosen_with_the_file_picker(dialog, qtbot, click, monkeypatch, tmp_path, studio_home):
    missing = tmp_path / "judge.gguf"
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *_a, **_k: (str(missing), ""))
    click(dialog.kind_buttons["gguf"])
    assert dialog.gguf_box.isVisible() and not dialog.endpoint_box.isVisible()
    click(dialog.browse_button)
    assert dialog.model_path.text() == str(missing)
    click(dialog.test_button)
    _wait_idle(qtbot, dialog)
    assert "The judge could not answer." in dialog.banner.text() and "does not exist" in dialog.banner.text()
    click(dialog.save_button)
    saved = json.loads((studio_home / "judge.json").read_text())
    assert saved["kind"] == "gguf" and saved["model_path"] == str(missing) and saved["key_in_keyring"] is False


def test_a_chosen_judge_without_its_file_or_address_is_not_saved(dialog, click, studio_home):
    click(dialog.kind_buttons["endpoint"])
    click(dialog.save_button)
    assert "Nothing to save yet" in dialog.banner.text()
    assert not (studio_home / "judge.json").exists()


def test_the_settings_menu_opens_the_judge_screen(make_window, qtbot, studio_home, keyring_store):
    window = make_window()
    entry = next(a for menu in window.findChildren(QMenu) for a in menu.actions() if a.text() == "Quality judge…")
    entry.trigger()
    dialogs = [d for d in window.findChildren(JudgeSettingsDialog) if d.isVisible()]
    assert len(dialogs) == 1 and dialogs[0].windowTitle() == "Quality judge"
    assert dialogs[0].windowModality() == Qt.WindowModality.NonModal
    dialogs[0].close()


def test_every_technical_word_on_the_screen_is_explained(dialog, click):
    from PySide6.QtWidgets import QWidget

    from studio.gui.glossary import buddy_labels, explaining_widget, shown_text, terms_in

    unexplained, found = [], set()
    for kind in ("gguf", "endpoint"):
        click(dialog.kind_buttons[kind])
        labels = buddy_labels(dialog)
        for widget in [dialog, *dialog.findChildren(QWidget)]:
            text = shown_text(widget)
            if not text or not widget.isVisibleTo(dialog):
                continue
            terms = terms_in(text)
            found |= {term.term for term in terms}
            if terms and explaining_widget(widget, labels) is None:
                unexplained.append(f"{type(widget).__name__} {text[:60]!r} ({terms[0].term})")
    assert unexplained == []
    assert {"GGUF", "base model"} <= found
