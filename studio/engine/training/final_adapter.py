"""A run's final adapter, whole or not at all: written into a staging folder beside final/adapter, given a sha256
manifest (the checkpoints' own, see checkpoints.write_manifest), then renamed into place (export/atomic.py).

A crash or a full disk during the save therefore leaves no half-written final adapter, and export and `continue`
refuse one whose files no longer match their manifest (cut short by a copy, or edited). Adapters saved before
Studio wrote manifests have none, and are used as they are.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from studio.engine.errors import StudioError
from studio.engine.export.adapter import check_adapter
from studio.engine.export.atomic import staged_output
from studio.engine.runs.folders import CONFIG_FILE, final_adapter_dir
from studio.engine.training.checkpoints import MANIFEST, check_manifest, latest_good, write_manifest


@contextmanager
def staged_final_adapter(run_dir: Path) -> Iterator[Path]:
    """An empty folder to write a final adapter into (by training, merging or importing); when the block ends
    without error it gets its manifest and becomes final/adapter, otherwise it is removed. A failed write
    raises the OSError itself, so the caller reports a full disk in its own words."""
    with staged_output(final_adapter_dir(run_dir), export_errors=False) as staging:
        yield staging
        write_manifest(staging)


@dataclass(frozen=True)
class UsableAdapter:
    """The adapter a run's results come from: its final adapter, or for a run stopped or interrupted before
    the end, the adapter of its last checkpoint that verifies (`step` then says how far it had got)."""

    path: Path
    step: int | None = None

    @property
    def from_checkpoint(self) -> bool:
        return self.step is not None

    def describe(self) -> str:
        return "the final adapter" if self.step is None else f"the checkpoint at step {self.step:,}"


def usable_adapter(run_dir: Path, name: str | None = None) -> UsableAdapter:
    """What export, the playground, quality checks and `continue` use: the final adapter once there is one
    (refused if damaged), else the last verified checkpoint, since what a stopped run learned is on disk.

    A PiSSA run's checkpoints are the exception: they apply only to the altered base the run trains on, so
    only its final adapter (converted to apply to the plain base) can be used on its own.
    """
    final = final_adapter_dir(run_dir)
    if (final / "adapter_config.json").is_file():
        check_adapter(final)  # config and weights both there
        check_adapter_folder(final, run_dir)
        return UsableAdapter(final)
    good = latest_good(run_dir)
    label = name or run_dir.name
    if good is not None and (good.path / "adapter_config.json").is_file():
        if not _is_pissa(good.path):
            return UsableAdapter(good.path, good.step)
        raise StudioError(
            what=f"{label} has no adapter that can be used on its own yet.",
            why="It was trained with PiSSA and stopped before the end: PiSSA checkpoints apply only to the "
                "altered model the run trains on, and the adapter for the plain model is written when it finishes.",
            actions=["Resume the run and let it finish (Resume in the runs library).",
                     "Or train again with plain LoRA, whose checkpoints can be used at any point."],
            code="adapter_missing",
        )
    raise StudioError(
        what=f"{label} has nothing trained to use yet.",
        why="It stopped before its first checkpoint was saved, so no adapter was written.",
        actions=["Resume the run so that it trains at least until its first checkpoint.",
                 "Or pick another run that trained further."],
        code="adapter_missing",
    )


def _is_pissa(adapter: Path) -> bool:
    try:
        config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and str(config.get("init_lora_weights", "")).startswith("pissa")


def check_final_adapter(run_dir: Path) -> None:
    """Refuse (adapter_damaged) a run's final adapter whose files do not match its manifest."""
    check_adapter_folder(final_adapter_dir(run_dir), run_dir)


def check_adapter_folder(adapter: Path, run_dir: Path | None = None) -> None:
    """Refuse (adapter_damaged) an adapter folder whose files do not match its manifest; one without a manifest
    was saved before Studio wrote them and passes. Also checked where a continued run loads its adapter, since
    the folder can change between queueing that run and its start."""
    if not (adapter / MANIFEST).exists():
        return
    problem = check_manifest(adapter)
    if problem is None:
        return
    settings = (run_dir or adapter.parent.parent) / CONFIG_FILE  # a run's adapter is <run>/final/adapter
    retrain = (f"Train it again with the same settings: `studio train --config {shlex.quote(str(settings))}`."
               if run_dir is not None or settings.is_file() else "Train the run it came from again.")
    raise StudioError(
        what=f"The adapter in {adapter} is damaged, so Studio will not use it.",
        why=f"{problem[0].upper()}{problem[1:]}. Its files must match the checksums saved when it was written; "
            "a copy cut short, a full disk or an edit to the folder can break that.",
        actions=[
            "If the run folder was copied from another machine or disk, copy it again from the original.",
            retrain,
            "Or use another run that completed (see `studio runs`).",
        ],
        code="adapter_damaged",
    )
