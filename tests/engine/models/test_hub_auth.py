"""Where the Hugging Face token comes from: keyring, then HF_TOKEN, then `hf auth login`."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.engine.models.hub_auth import KEYRING_SERVICE, KEYRING_USER, find_token, save_token
from tests.hub_server import MemoryKeyring


@pytest.fixture
def keyring_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> MemoryKeyring:
    from huggingface_hub import constants

    backend = MemoryKeyring()
    monkeypatch.setattr("keyring.core._keyring_backend", backend)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf-home" / "token"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return backend


def test_the_keyring_comes_first_then_hf_token_then_the_hf_login(keyring_store, monkeypatch, tmp_path):
    assert find_token() is None
    login = tmp_path / "hf-home" / "token"
    login.parent.mkdir()
    login.write_text("hf_from_login\n")
    found = find_token()
    assert found is not None and (found.value, found.source) == ("hf_from_login", "hf auth login")
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    found = find_token()
    assert found is not None and (found.value, found.source) == ("hf_from_env", "HF_TOKEN")
    save_token("  hf_typed_in_the_app \n")
    assert keyring_store.passwords[(KEYRING_SERVICE, KEYRING_USER)] == "hf_typed_in_the_app"
    found = find_token()
    assert found is not None and (found.value, found.source) == ("hf_typed_in_the_app", "keyring")
    assert "hf_typed" not in repr(found)


def test_no_usable_keyring_still_finds_hf_token(keyring_store, monkeypatch):
    from keyring.backends import fail

    monkeypatch.setattr("keyring.core._keyring_backend", fail.Keyring())
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    found = find_token()
    assert found is not None and found.source == "HF_TOKEN"
