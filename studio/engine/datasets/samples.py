"""The sample datasets shipped with Studio, one per use-case profile, for a first try without own data."""

from __future__ import annotations

from pathlib import Path

from studio.engine.errors import StudioError
from studio.engine.paths import resources_dir

SAMPLE_DATASETS: dict[str, str] = {
    "chatbot": "chatbot.jsonl",
    "code": "code.jsonl",
    "summarization": "summarization.jsonl",
    "qa": "qa.csv",
    "creative": "creative.jsonl",
    "domain": "domain.txt",
    "preference": "preference.jsonl",
}


def samples_dir() -> Path:
    return resources_dir() / "samples"


def sample_path(profile_id: str) -> Path:
    """The sample file for a profile; a clear error when the profile has none or the file is missing."""
    name = SAMPLE_DATASETS.get(profile_id.lower())
    if name is None:
        raise StudioError(
            what=f"There is no sample dataset for '{profile_id}'.",
            why=f"Samples exist for: {', '.join(SAMPLE_DATASETS)}.",
            actions=["Pick one of those use cases.", "Or use your own data file."],
            code="sample_unknown",
        )
    path = samples_dir() / name
    if not path.is_file():
        raise StudioError(
            what=f"The sample dataset {name} is missing.",
            why=f"Expected it at {path}.",
            actions=["Reinstall Studio to restore its sample files."],
            code="sample_missing",
        )
    return path
