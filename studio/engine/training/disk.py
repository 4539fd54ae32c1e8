"""A full disk during training, told plainly: recognising it wherever the worker writes (checkpoints, events,
the final adapter), the `disk_full` error that names the folder and how much to free, and the free-space check
before training starts. The free space is read here alone (`free_bytes`), so tests patch one place.
"""

from __future__ import annotations

import errno
import shutil
import sys
from pathlib import Path

from studio.engine.config import TrainConfig
from studio.engine.errors import StudioError
from studio.engine.library.disk import format_bytes, tree_size
from studio.engine.models.facts import read_model_facts
from studio.engine.planner import disk_needed_bytes
from studio.engine.training.checkpoints import checkpoints_dir

# The files tokenizer.save_pretrained writes, which every checkpoint and the final adapter carry.
TOKENIZER_FILES = (
    "tokenizer*", "special_tokens_map.json", "vocab.*", "merges.txt", "chat_template.*", "added_tokens.json"
)

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
# How libraries that do not raise a plain OSError word it (Rust's I/O errors in safetensors, SQLite).
DISK_FULL_TEXTS = (
    "no space left on device", "disk quota exceeded", "os error 28", "storagefull", "database or disk is full"
)
# torch.save says only "file write failed": with less than this left on the disk, that is a full disk.
NEARLY_FULL_BYTES = 1024 * 1024


def free_bytes(folder: Path) -> int:
    """Free bytes on the file system that holds `folder` (or its nearest existing parent)."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def is_disk_full(exc: BaseException, folder: Path | None = None) -> bool:
    """Whether `exc` (or an error it was raised from) means the disk is full or the quota used up."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return True
        if any(text in str(current).lower() for text in DISK_FULL_TEXTS):
            return True
        current = current.__cause__ or current.__context__
    if folder is None or "write" not in str(exc).lower():
        return False
    try:
        return free_bytes(folder) < NEARLY_FULL_BYTES
    except OSError:
        return False


def disk_full_error(folder: Path, run_id: str, needed_bytes: int | None, free: int | None = None) -> StudioError:
    """The `disk_full` error (exit 1) for a write into `folder` that found no space, or a pre-flight refusal
    when `free` (what is left) is given: the run keeps its last good checkpoint and resumes from it."""
    amount = f"about {format_bytes(needed_bytes)}" if needed_bytes else "some space"
    if free is None:
        what = "Training stopped because the disk is full."
        why = f"Studio could not write into {folder}: there is no space left on that disk."
    else:
        what = "Training did not start: there is not enough free disk space for this run."
        why = f"The run needs {amount} for its checkpoints and adapter, and {format_bytes(free)} is free in {folder}."
    return StudioError(
        what=what,
        why=why + " The last good checkpoint (if any) is kept.",
        actions=[
            f"Free {amount} on the disk that holds {folder}: `studio clean` removes intermediate checkpoints "
            "of finished runs, `studio delete RUN` removes a run.",
            f"Then resume the run: `studio resume {run_id}`.",
            "Or keep fewer checkpoints (keep_last_checkpoints), or set STUDIO_HOME to a folder on a bigger disk.",
        ],
        code="disk_full",
    )


def check_free_space(folder: Path, run_id: str, needed_bytes: int | None) -> None:
    """Refuse (disk_full) before the model is loaded when `folder`'s disk has less than the run needs (nothing
    to check without an estimate)."""
    if needed_bytes is None:
        return
    free = free_bytes(folder)
    if free < needed_bytes:
        raise disk_full_error(folder, run_id, needed_bytes, free=free)


def run_disk_needed(config: TrainConfig, model_path: Path, run_dir: Path) -> int | None:
    """The planner's estimate of the bytes this run still needs (studio.engine.planner.disk_needed_bytes), or
    None when the model's facts cannot be read (loading it will then say why)."""
    try:
        facts = read_model_facts(model_path)
    except (StudioError, OSError, ValueError) as exc:
        sys.stderr.write(f"free-space check skipped: {exc}\n")
        return None
    written = tree_size(checkpoints_dir(run_dir))
    return disk_needed_bytes(config, facts, tokenizer_bytes=tokenizer_bytes(model_path), written_bytes=written)


def tokenizer_bytes(model_path: Path) -> int:
    """The size of the tokenizer's files in a model folder: each checkpoint and the final adapter carry a copy."""
    return sum(
        file.stat().st_size for pattern in TOKENIZER_FILES for file in model_path.glob(pattern) if file.is_file()
    )
