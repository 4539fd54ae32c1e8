"""Downloading a Hub model from the wizard's model page, clicked through as a person would, against the local
fake Hub (tests/hub_server.py) serving a real model's files as Qwen/Qwen2.5-0.5B-Instruct: progress with
speed and time left, cancel and resume, a gated model and its token, a model with its own code, offline and
a full disk. Never a terminal command in what the app says."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit

from studio.engine.errors import StudioError
from studio.engine.models.download import DownloadProgress
from studio.engine.models.hub_auth import load_token
from studio.engine.models.hub_reach import hub_offline_error
from studio.engine.models.resolve import hf_cache_snapshot
from studio.wizard.model_page import download_text, gui_error, without_commands
from studio.wizard.state import WizardState
from studio.wizard.token_dialog import TOKENS_URL
from tests.gui.layout_checks import layout_problems
from tests.hub_server import FakeHub, Repo, _Handler, downloads_finished, model_folder, use_fake_hub, wait_until

REPO = "Qwen/Qwen2.5-0.5B-Instruct"
PROGRESS = re.compile(r"\d+(\.\d)? [MG]B of \d+(\.\d)? [MG]B · .+")
_serve_files = _Handler._serve


def _search_entry(repo: Repo) -> dict[str, object]:
    """A model as the Hub's search lists it (expand=safetensors, cardData, config)."""
    params = repo.files["model.safetensors"].stat().st_size // 4  # float32 weights
    config = json.loads(repo.files["config.json"].read_text())
    return {"id": repo.repo_id, "modelId": repo.repo_id, "downloads": 1000, "likes": 10,
            "pipeline_tag": "text-generation", "safetensors": {"parameters": {"F32": params}, "total": params},
            "cardData": {"license": "apache-2.0"}, "config": config}


def _serve_with_search(handler: _Handler, body: bool) -> None:
    """The fake Hub plus GET /api/models?search=, the model search the wizard's search box uses (the shared
    fake Hub serves downloads only)."""
    url = urlsplit(handler.path)
    if url.path != "/api/models":
        return _serve_files(handler, body)
    query = parse_qs(url.query).get("search", [""])[0].lower()
    hub = handler.server_hub
    found = [_search_entry(repo) for repo in hub.repos.values() if query in repo.repo_id.lower() and not repo.private]
    payload = json.dumps(found).encode()
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    if body:
        handler.wfile.write(payload)
    return None


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    monkeypatch.setattr(_Handler, "_serve", _serve_with_search)
    with FakeHub() as server:
        use_fake_hub(monkeypatch, server, tmp_path)
        yield server


@pytest.fixture
def repo_dir(tiny_model_dir: Path, tmp_path: Path) -> Path:
    return model_folder(tiny_model_dir, tmp_path / "repo")


@pytest.fixture
def model_page(qtbot, make_wizard, hub):
    wizard = make_wizard(WizardState(onboarding_done=True, profile_id="chatbot", page=2))
    page = wizard.page_at(2)
    qtbot.waitUntil(lambda: page.selected() is not None, timeout=60_000)
    return wizard, page


def pick(qtbot, page, query: str = "qwen2.5") -> None:
    """Type a search and click the first result, as a person would."""
    qtbot.keyClicks(page.search, query)
    hub_group = page.groups["hub"]
    qtbot.waitUntil(lambda: hub_group.childCount() > 0 and not page.search_runner.busy, timeout=20_000)
    rect = page.tree.visualItemRect(hub_group.child(0))
    qtbot.mouseClick(page.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert page.selected().ref == REPO and page.selected().source == "hub"


def assert_no_terminal(wizard, page) -> None:
    said = "\n".join([page.banner.text(), wizard.message.text(), page.search_status.text()])
    assert "`" not in said and "hf download" not in said and "studio models" not in said, said


def test_progress_text_has_bytes_speed_and_time_left():
    mb = 1024**2
    progress = DownloadProgress(312 * mb, 988 * mb, 24 * mb, 30.0, 3, 6)
    assert download_text(progress) == "312 MB of 988 MB · 24 MB/s · about 30 s left"
    assert download_text(DownloadProgress(0, 2048 * mb, 0.0, None, 0, 6)) == (
        "0 MB of 2.0 GB · working out the time left")
    assert download_text(progress, settled=False) == "312 MB of 988 MB · working out the time left"
    assert download_text(DownloadProgress(980 * mb, 988 * mb, 24 * mb, 0.3, 5, 6)).endswith("24 MB/s · almost done")
    assert download_text(DownloadProgress(5 * mb, 5 * mb, 1.5 * mb, 0.0, 6, 6)) == "5 MB of 5 MB · finishing"


def test_the_engines_terminal_commands_never_reach_the_page():
    offline = gui_error(hub_offline_error("No network.", "download from"))
    assert offline.what == "Studio cannot download from Hugging Face right now." and offline.why == "No network."
    assert "`" not in " ".join(offline.actions) and "On this computer" in offline.actions[-1]
    other = gui_error(StudioError(what="Gone.", why="Moved (see `studio models`). Really.",
                                  actions=["Check the spelling.", "Search: `studio models --search NAME`."],
                                  code="download_not_found"))
    assert other.why == "Moved. Really." and other.actions[0] == "Check the spelling." and len(other.actions) == 2
    assert "`" not in " ".join(other.actions)
    note = ("X has no chat template. For a chat model, use the instruct version; or train it on plain text (the "
            "domain profile, `--profile domain`).")
    assert without_commands(note) == ("X has no chat template. For a chat model, use the instruct version; or train "
                                       "it on plain text.")


def test_a_new_user_downloads_qwen_with_progress_and_goes_on(qtbot, model_page, hub, repo_dir, click):
    wizard, page = model_page
    hub.add_repo(REPO, repo_dir)
    hub.chunk_delay_s = 0.03  # about 8 s: progress is seen, and the time left once the speed has settled
    pick(qtbot, page)
    assert not wizard.next_button.isEnabled() and "Press Download" in wizard.message.text()
    assert_no_terminal(wizard, page)
    qtbot.waitUntil(lambda: page.download_button.text() == "Download (16 MB)", timeout=10_000)  # the Hub's sizes

    seen: list[str] = []
    page.download_runner.statusChanged.connect(seen.append)
    click(page.download_button)
    assert page.download_box.isVisible() and page.cancel_button.isVisible()
    assert not page.download_button.isVisible() or not page.download_button.isEnabled()
    assert "Studio is downloading" in wizard.message.text() and not wizard.next_button.isEnabled()
    qtbot.waitUntil(lambda: PROGRESS.fullmatch(page.download_status.text()) is not None, timeout=10_000)
    wizard.resize(1024, 640)  # a small screen: nothing cut, nothing nameless
    qtbot.waitUntil(lambda: not layout_problems(wizard), timeout=5_000)
    qtbot.waitUntil(lambda: not page.download_runner.busy, timeout=60_000)

    shown = [text for text in seen if PROGRESS.fullmatch(text)]
    assert len(set(shown)) >= 2, seen  # the text moved on as bytes came in
    assert any("/s · about " in text and text.endswith(" left") for text in shown), seen
    assert not page.download_box.isVisible()
    qtbot.waitUntil(lambda: page.selected() is not None and page.selected().source == "hf_cache", timeout=20_000)
    assert page.selected().ref == REPO and wizard.session.state.model_ref == REPO
    assert page.tree.currentItem().parent() is page.groups["local"]  # as if picked under "On this computer"
    assert wizard.next_button.isEnabled() and wizard.message.text() == ""
    assert f"{REPO} is on this computer." in page.banner.text() and "selected as your base model" in page.banner.text()
    assert hf_cache_snapshot(REPO) is not None
    assert_no_terminal(wizard, page)

    # Picking the search result again goes to the downloaded copy: nothing is fetched twice.
    rect = page.tree.visualItemRect(page.groups["hub"].child(0))
    qtbot.mouseClick(page.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert page.selected().source == "hf_cache" and wizard.next_button.isEnabled()


def test_cancel_says_nothing_is_lost_and_the_next_download_finishes(qtbot, model_page, hub, repo_dir, click):
    wizard, page = model_page
    hub.add_repo(REPO, repo_dir)
    hub.chunk_delay_s = 0.05  # about 13 s: plenty of time to cancel
    pick(qtbot, page)
    click(page.download_button)
    qtbot.waitUntil(lambda: PROGRESS.fullmatch(page.download_status.text()) is not None, timeout=10_000)
    click(page.cancel_button)
    qtbot.waitUntil(lambda: "Download cancelled" in page.banner.text(), timeout=10_000)
    assert "Nothing is lost" in page.banner.text() and page.banner.objectName() == "banner_info"
    assert not page.download_box.isVisible() and page.download_button.isEnabled()
    assert hf_cache_snapshot(REPO) is None and not wizard.next_button.isEnabled()
    assert "Press Download" in wizard.message.text()

    hub.chunk_delay_s = 0.0
    assert wait_until(downloads_finished)
    click(page.download_button)
    qtbot.waitUntil(lambda: page.selected().source == "hf_cache", timeout=60_000)
    assert wizard.next_button.isEnabled() and hf_cache_snapshot(REPO) is not None


def test_a_gated_model_asks_for_a_token_and_keeps_it_in_the_keyring(qtbot, model_page, hub, repo_dir, click):
    wizard, page = model_page
    hub.add_repo(REPO, repo_dir, gated=True)
    pick(qtbot, page)
    click(page.download_button)
    qtbot.waitUntil(lambda: page.token_dialog is not None and page.token_dialog.isVisible(), timeout=20_000)
    dialog = page.token_dialog
    assert dialog.isModal() and "gated" in dialog.reason.text()
    assert dialog.token_edit.echoMode() == QLineEdit.EchoMode.Password
    assert dialog.remember.isChecked()  # a token typed in the app goes to the keyring
    assert TOKENS_URL in dialog.steps.text() and dialog.steps.openExternalLinks()
    assert not dialog.download_button.isEnabled()  # nothing typed yet
    assert layout_problems(dialog) == []

    qtbot.keyClicks(dialog.token_edit, "hf_mistyped")
    click(dialog.download_button)
    qtbot.waitUntil(lambda: page.token_dialog not in (None, dialog) and page.token_dialog.isVisible(),
                    timeout=20_000)
    again = page.token_dialog
    assert "refused the token" in again.reason.text() and load_token() is None

    qtbot.keyClicks(again.token_edit, "hf_good")
    click(again.download_button)
    qtbot.waitUntil(lambda: page.selected().source == "hf_cache", timeout=60_000)
    assert wizard.next_button.isEnabled() and page.token_dialog is None
    assert {r.token for r in hub.fetched("model.safetensors")} == {"hf_good"}
    assert load_token() == "hf_good"  # through keyring's API, here the fake Hub's in-memory backend


def test_cancelling_the_token_dialog_leaves_a_plain_message(qtbot, model_page, hub, repo_dir, click):
    wizard, page = model_page
    hub.add_repo(REPO, repo_dir, gated=True)
    pick(qtbot, page)
    click(page.download_button)
    qtbot.waitUntil(lambda: page.token_dialog is not None and page.token_dialog.isVisible(), timeout=20_000)
    click(page.token_dialog.cancel_button)
    qtbot.waitUntil(lambda: page.token_dialog is None)
    assert "needs a Hugging Face token" in page.banner.text() and TOKENS_URL in page.banner.text()
    assert not wizard.next_button.isEnabled() and load_token() is None
    assert_no_terminal(wizard, page)


def test_offline_is_one_message_and_local_models_still_work(qtbot, model_page, hub, repo_dir, click, monkeypatch):
    from huggingface_hub import constants

    wizard, page = model_page
    hub.add_repo(REPO, repo_dir)
    pick(qtbot, page)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    click(page.download_button)
    qtbot.waitUntil(lambda: page.banner.isVisible() and not page.download_runner.busy, timeout=20_000)
    text = page.banner.text()
    assert text.startswith("Studio cannot download from Hugging Face right now.") and "Offline mode" in text
    assert "On this computer" in text and "built-in model always works offline" in text
    assert page.banner.objectName() == "banner_bad" and not hub.fetched("model.safetensors")
    assert_no_terminal(wizard, page)

    builtin = page.groups["builtin"].child(0)
    qtbot.mouseClick(page.tree.viewport(), Qt.MouseButton.LeftButton, pos=page.tree.visualItemRect(builtin).center())
    assert page.selected().source == "builtin" and wizard.next_button.isEnabled()


def test_not_enough_disk_gives_the_figures_before_downloading(qtbot, model_page, hub, repo_dir, click, monkeypatch):
    wizard, page = model_page
    hub.add_repo(REPO, repo_dir)
    monkeypatch.setattr("studio.engine.models.download._free_bytes", lambda path: 300 * 1024**2)
    pick(qtbot, page)
    click(page.download_button)
    qtbot.waitUntil(lambda: page.banner.isVisible() and not page.download_runner.busy, timeout=20_000)
    text = page.banner.text()
    assert "not enough free disk space" in text and "It needs 16 MB" in text and "300 MB free" in text
    assert "Free some space" in text and "smaller model" in text
    assert not hub.fetched("model.safetensors") and not wizard.next_button.isEnabled()
    assert_no_terminal(wizard, page)


def test_a_model_with_its_own_code_downloads_only_once_allowed(qtbot, model_page, hub, tiny_model_dir, tmp_path,
                                                                click):
    wizard, page = model_page
    folder = model_folder(tiny_model_dir, tmp_path / "custom", extra={"modeling_custom.py": b"import os\n"},
                          config={"auto_map": {"AutoModelForCausalLM": "modeling_custom.CustomModel"}})
    hub.add_repo(REPO, folder)
    pick(qtbot, page)
    assert not page.allow_code.isVisible()  # nothing to allow until the Hub says so
    click(page.download_button)
    qtbot.waitUntil(lambda: page.allow_code.isVisible(), timeout=20_000)
    assert "needs its own Python code" in page.banner.text() and "Allow this model's own code" in page.banner.text()
    assert not page.allow_code.isChecked() and page.code_warning.isVisible() and "trust" in page.code_warning.text()
    assert not page.download_button.isEnabled() and not hub.fetched("model.safetensors")
    assert "allow it above" in wizard.message.text() and layout_problems(wizard) == []
    assert_no_terminal(wizard, page)

    click(page.allow_code)
    assert page.allow_code.isChecked() and page.download_button.isEnabled()
    click(page.download_button)
    assert "with its own code allowed" in page.download_box.title()
    qtbot.waitUntil(lambda: page.selected().source == "hf_cache", timeout=60_000)
    assert "own code is allowed" in page.banner.text() and wizard.next_button.isEnabled()
    assert (hf_cache_snapshot(REPO) / "modeling_custom.py").is_file()
