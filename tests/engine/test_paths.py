"""Data locations: STUDIO_HOME and STUDIO_MODELS_DIR override, folders are created, resources are found."""

from __future__ import annotations

from studio.engine import paths


def test_everything_lives_under_studio_home(studio_home):
    assert paths.studio_home() == studio_home
    for folder in (paths.runs_dir(), paths.cache_dir(), paths.presets_dir()):
        assert folder.is_dir() and folder.parent == studio_home
    assert paths.database_path().parent == studio_home


def test_models_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(tmp_path / "shared"))
    assert paths.models_dir() == tmp_path / "shared" and (tmp_path / "shared").is_dir()
    monkeypatch.delenv("STUDIO_MODELS_DIR")
    assert paths.models_dir() == paths.studio_home() / "models"


def test_resources_are_found():
    assert (paths.resources_dir() / "profiles").is_dir()
