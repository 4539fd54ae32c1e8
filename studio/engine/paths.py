"""Where Studio keeps its data, so every part of the app agrees on one place.

STUDIO_HOME overrides the platform's data directory; tests point it at a temporary folder.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_NAME = "Studio"


def studio_home() -> Path:
    """The root data directory, created on first use."""
    override = os.environ.get("STUDIO_HOME")
    root = Path(override).expanduser() if override else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    root.mkdir(parents=True, exist_ok=True)
    return root


def runs_dir() -> Path:
    return _subdir("runs")


def models_dir() -> Path:
    """Materialized and converted models. STUDIO_MODELS_DIR lets tests share one copy across temporary homes."""
    override = os.environ.get("STUDIO_MODELS_DIR")
    if override:
        path = Path(override).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        return path
    return _subdir("models")


def cache_dir() -> Path:
    return _subdir("cache")


def presets_dir() -> Path:
    return _subdir("presets")


def database_path() -> Path:
    return studio_home() / "studio.sqlite"


def resources_dir() -> Path:
    """The shipped data files (profiles, samples, icons); inside a frozen bundle they sit beside the code."""
    here = Path(__file__).resolve().parent.parent.parent
    for candidate in (here / "resources", Path(getattr(sys, "_MEIPASS", here)) / "resources"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("Studio's resources folder is missing: reinstall Studio.")


def _subdir(name: str) -> Path:
    path = studio_home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path
