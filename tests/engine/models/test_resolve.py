"""Turning 'builtin', folders and Hub ids into local folders, with clear errors otherwise."""

from __future__ import annotations

import json

import pytest

from studio.engine.errors import StudioError
from studio.engine.models.resolve import looks_like_hub_id, resolve_model


@pytest.mark.slow
@pytest.mark.parametrize("ref", [None, "builtin", "builtin:smollm2-135m-instruct", "SmolLM2-135M-Instruct"])
def test_builtin_aliases_resolve_to_the_materialized_folder(builtin_model_dir, ref):
    assert resolve_model(ref) == builtin_model_dir


def test_a_folder_with_config_json_resolves(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    assert resolve_model(str(tmp_path)) == tmp_path.resolve()


def test_a_folder_without_config_json_is_refused(tmp_path):
    with pytest.raises(StudioError) as info:
        resolve_model(str(tmp_path))
    assert info.value.code == "model_folder_invalid" and info.value.exit_code == 4
    assert "config.json" in info.value.why


def test_a_file_is_refused_with_a_hint_for_gguf(tmp_path):
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    with pytest.raises(StudioError) as info:
        resolve_model(str(gguf))
    assert info.value.code == "model_not_folder" and "GGUF" in info.value.why


def test_unknown_hub_id_is_not_downloaded_and_says_how_to_get_it():
    with pytest.raises(StudioError) as info:
        resolve_model("nobody-here/no-such-model-xyz")
    assert info.value.code == "model_not_found" and info.value.exit_code == 4
    assert "studio models download nobody-here/no-such-model-xyz" in info.value.why


def test_nonsense_is_not_found():
    with pytest.raises(StudioError) as info:
        resolve_model("definitely not a model")
    assert info.value.exit_code == 4


def test_hub_ids_are_found_in_the_local_hf_cache(tmp_path, monkeypatch):
    """A cache laid out exactly as huggingface_hub writes it (refs/main -> snapshots/<commit>)."""
    import huggingface_hub.constants as hf_constants

    repo = tmp_path / "models--acme--tiny-chat"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({"hidden_size": 8}))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path))
    assert resolve_model("acme/tiny-chat") == snapshot.resolve()


def test_folders_under_the_models_dir_resolve_by_name(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(tmp_path))
    (tmp_path / "my-model").mkdir()
    (tmp_path / "my-model" / "config.json").write_text("{}")
    assert resolve_model("my-model") == (tmp_path / "my-model").resolve()


@pytest.mark.parametrize(("text", "expected"), [
    ("Qwen/Qwen2.5-0.5B", True), ("a/b", True), ("builtin", False), ("./a/b", False), ("a/b/c", False),
    ("a b/c", False),
])
def test_hub_id_shape(text, expected):
    assert looks_like_hub_id(text) is expected
