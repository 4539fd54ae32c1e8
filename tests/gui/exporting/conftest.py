"""The exporting tests share one real tiny run per module, each test working on its own copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.engine.registry import RunRecord
from tests.gui.exporting.tiny_run import install_run, train_tiny_run


@pytest.fixture(scope="module")
def trained_home(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_tiny_run(tmp_path_factory.mktemp("export-home"), tiny_model_dir)


@pytest.fixture
def tiny_run(trained_home: Path, studio_home: Path) -> RunRecord:
    return install_run(trained_home, studio_home)
