"""Project-wide policies that no single module owns: the torch floor and the test suite's own strictness."""

from __future__ import annotations

import re
import warnings
from importlib.metadata import requires
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from studio.engine import handoff

ROOT = Path(__file__).resolve().parents[1]


def _torch_requirement() -> Requirement:
    return next(Requirement(d) for d in requires("studio") or [] if Requirement(d).name == "torch")


def test_torch_floor_excludes_versions_with_unsafe_weights_only_loading():
    """CVE-2025-32434: torch.load(weights_only=True) of optimizer and RNG state is unsafe below 2.6."""
    spec = _torch_requirement().specifier
    assert "2.5.1" not in spec
    assert "2.6.0" in spec
    assert "2.13.0" in spec  # the CPU build on this project's machines


def test_handoff_fallback_torch_range_matches_the_project():
    assert Requirement(handoff.TORCH_RANGE).specifier == _torch_requirement().specifier


def test_setup_fallback_torch_range_matches_the_project():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    fallback = re.search(r'"(torch>=[^"]+)"', setup)
    assert fallback, "setup.sh installs torch from a range when the pinned CPU build is missing"
    assert Requirement(fallback.group(1)).specifier == _torch_requirement().specifier


def test_a_deprecation_in_studios_own_code_fails_the_test():
    with pytest.raises(DeprecationWarning):
        warnings.warn_explicit("old API", DeprecationWarning, "studio/engine/example.py", 1,
                               module="studio.engine.example")


def test_a_deprecation_inside_a_library_does_not_fail_the_test():
    with warnings.catch_warnings(record=True):
        warnings.warn_explicit("old API", DeprecationWarning, "somelib/x.py", 1, module="somelib.x")


def test_qt_warnings_fail_the_test(pytestconfig: pytest.Config):
    assert pytestconfig.getini("qt_log_level_fail") == "WARNING"


# The engine modules exempt from mypy --strict on 2026-12-07; the list in pyproject.toml may only shrink.
MYPY_EXEMPT_AT_MOST = frozenset({
    "studio.engine.models.catalog", "studio.engine.models.download", "studio.engine.models.facts",
    "studio.engine.objectives", "studio.engine.training.backends.hf", "studio.engine.training.callbacks",
    "studio.engine.training.data", "studio.engine.training.worker",
})


def test_the_mypy_exemptions_only_shrink():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    settings = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["mypy"]
    assert settings["strict"] is True
    exempt = {module for override in settings.get("overrides", []) if override.get("ignore_errors")
              for module in override["module"]}
    assert exempt <= MYPY_EXEMPT_AT_MOST, f"new exemptions: {sorted(exempt - MYPY_EXEMPT_AT_MOST)}"
    assert "mypy --strict studio/engine" in (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
