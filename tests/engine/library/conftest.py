"""Fixtures for the library engine tests: real trained runs, installed fresh into each test's home."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.library.factory import Library, build_library_home, install_library


@pytest.fixture(scope="session")
def library_source(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_library_home(tmp_path_factory.getbasetemp() / "library-home", tiny_model_dir)


@pytest.fixture
def library(library_source: Path, studio_home: Path) -> Library:
    return install_library(library_source, studio_home)
