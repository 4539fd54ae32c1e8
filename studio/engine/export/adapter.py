"""The trained adapter on its own, in PEFT's format: small, and loadable on top of the same base model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from studio.engine.errors import StudioError
from studio.engine.export.atomic import staged_output
from studio.engine.progress import Span

WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
# What a PEFT adapter folder holds besides its weights; a checkpoint also holds optimizer and trainer state.
_SHARED_FILES = frozenset({"special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt",
                           "chat_template.jinja", "chat_template.json"})


def check_adapter(adapter_path: Path) -> dict[str, object]:
    """The adapter's PEFT config, after making sure its config and weights are both there."""
    config_file = adapter_path / "adapter_config.json"
    weights = [adapter_path / name for name in WEIGHT_FILES if (adapter_path / name).is_file()]
    if not config_file.is_file() or not weights:
        missing = ([] if config_file.is_file() else ["its settings (adapter_config.json)"]) + (
            [] if weights else [f"its weights ({WEIGHT_FILES[0]})"])
        raise StudioError(
            what="This run has no complete adapter to export.",
            why=f"The adapter folder {adapter_path} lacks {' and '.join(missing)}. The run may not have "
                "finished, or its files were moved or deleted.",
            actions=[
                "Export a run that completed (the runs library, or `studio runs`, lists them).",
                "Resume the run so it can finish and save its adapter.",
            ],
            code="adapter_missing",
        )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StudioError(
            what="The adapter's settings file is damaged.",
            why=f"{config_file}: {exc}",
            actions=["Export from an earlier checkpoint of this run, or train it again."],
            code="adapter_invalid",
        ) from None
    if not isinstance(config, dict):
        raise StudioError(
            what="The adapter's settings file is damaged.",
            why=f"{config_file} does not hold a set of settings.",
            actions=["Export from an earlier checkpoint of this run, or train it again."],
            code="adapter_invalid",
        )
    return config


def _belongs_to_adapter(name: str) -> bool:
    return name.startswith(("adapter_", "tokenizer")) or name in _SHARED_FILES


def export_adapter(adapter_path: Path, out_dir: Path, card: str, steps: Span | None = None) -> Path:
    """Copy the adapter's files (config, weights, tokenizer if saved) with a model card into `out_dir`."""
    steps = steps or Span()
    check_adapter(adapter_path)
    files = sorted(p for p in adapter_path.iterdir() if p.is_file() and _belongs_to_adapter(p.name))
    with staged_output(out_dir) as staging:
        for index, path in enumerate(files):
            steps.report(f"Copying {path.name}", index / max(len(files), 1))
            shutil.copy2(path, staging / path.name)
        (staging / "README.md").write_text(card, encoding="utf-8")
    steps.report("Adapter exported", 1.0)
    return out_dir
