"""Turn what a person typed ('builtin', a folder, a Hugging Face id) into a local model folder.

Nothing is downloaded here: planning and training start from models already on this machine, so they
work offline and never surprise anyone with a multi-gigabyte download.
"""

from __future__ import annotations

from pathlib import Path

from studio.engine.errors import ExitCode, StudioError, model_not_found
from studio.engine.models.builtin import ensure_builtin, is_builtin
from studio.engine.paths import models_dir


def resolve_model(ref: str | None) -> Path:
    """The local folder holding `ref`'s config.json. Raises StudioError (exit 4) when there is none."""
    if is_builtin(ref):
        return ensure_builtin()
    text = (ref or "").strip()
    path = Path(text).expanduser()
    if path.exists():
        return _checked_folder(path, text)
    named = models_dir() / text
    if named.is_dir():
        return _checked_folder(named, text)
    if looks_like_hub_id(text):
        cached = hf_cache_snapshot(text)
        if cached is not None:
            return cached
        raise model_not_found(
            text,
            "It is not in this machine's Hugging Face cache (or its download did not finish), and planning and "
            f"training never download anything. Download it first: studio models download {text}",
        )
    raise model_not_found(text, "There is no folder with that name and it does not look like a Hugging Face id "
                                "(which has the form owner/name).")


def looks_like_hub_id(text: str) -> bool:
    parts = text.split("/")
    return len(parts) == 2 and all(parts) and not text.startswith((".", "~")) and " " not in text


def hf_cache_snapshot(repo_id: str) -> Path | None:
    """The cached snapshot folder of a Hub model, or None if its config.json was never downloaded.

    Studio's download (models.download) fetches config.json last, so a snapshot that has it is complete."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, "config.json")
    except Exception:  # an invalid id or an unreadable cache both mean "not here"
        return None
    return Path(found).parent if isinstance(found, str) else None


def _checked_folder(path: Path, ref: str) -> Path:
    if path.is_file():
        hint = " It is a GGUF file, which Studio can export to but not train from." if path.suffix == ".gguf" else ""
        raise StudioError(
            what=f"'{ref}' is a file, but Studio needs a model folder.",
            why="A trainable model is a folder with config.json, the weights and the tokenizer." + hint,
            actions=["Pass the folder that contains config.json.", "Run `studio models` to see usable models."],
            code="model_not_folder",
            exit_code=ExitCode.MODEL_NOT_FOUND,
        )
    if not (path / "config.json").is_file():
        raise StudioError(
            what=f"The folder {path} is not a model Studio can use.",
            why="It has no config.json, so it is not a Hugging Face model folder.",
            actions=[
                "Pass the folder that contains config.json (often one level deeper).",
                "Run `studio models` to see the models on this machine.",
                "Leave --model out to use the built-in model.",
            ],
            code="model_folder_invalid",
            exit_code=ExitCode.MODEL_NOT_FOUND,
        )
    return path.resolve()
