"""LM Studio lists a GGUF only when it sits at <models folder>/<publisher>/<model>/<file>.gguf."""

from __future__ import annotations

from pathlib import Path

PUBLISHER = "studio"


def lmstudio_models_dir() -> Path | None:
    """LM Studio's models folder on this machine, if it is installed; newer versions use ~/.lmstudio."""
    home = Path.home()
    for candidate in (home / ".lmstudio" / "models", home / ".cache" / "lm-studio" / "models"):
        if candidate.is_dir():
            return candidate
    return None


def lmstudio_target(models_root: Path, model_name: str) -> Path:
    """The folder for one model in LM Studio's layout."""
    return models_root / PUBLISHER / model_name
