"""A run's final adapter, whole or not at all: written into a staging folder beside final/adapter, given a sha256
manifest (the checkpoints' own, see checkpoints.write_manifest), then renamed into place (export/atomic.py).

A crash or a full disk during the save therefore leaves no half-written final adapter, and export and `continue`
refuse one whose files no longer match their manifest (cut short by a copy, or edited). Adapters saved before
Studio wrote manifests have none, and are used as they are.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from studio.engine.errors import StudioError
from studio.engine.export.atomic import staged_output
from studio.engine.runs import CONFIG_FILE, final_adapter_dir
from studio.engine.training.backends.hf import save_adapter
from studio.engine.training.checkpoints import MANIFEST, check_manifest, write_manifest


def save_final_adapter(model: Any, tokenizer: Any, run_dir: Path) -> Path:
    """Save the trained adapter and its tokenizer as the run's final adapter; returns its folder."""
    with staged_final_adapter(run_dir) as staging:
        save_adapter(model, staging)  # a PiSSA adapter is converted to apply to the plain base
        tokenizer.save_pretrained(staging)
    return final_adapter_dir(run_dir)


@contextmanager
def staged_final_adapter(run_dir: Path) -> Iterator[Path]:
    """An empty folder to write a final adapter into (by training, merging or importing); when the block ends
    without error it gets its manifest and becomes final/adapter, otherwise it is removed. A failed write
    raises the OSError itself, so the caller reports a full disk in its own words."""
    with staged_output(final_adapter_dir(run_dir), export_errors=False) as staging:
        yield staging
        write_manifest(staging)


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
