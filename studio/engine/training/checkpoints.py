"""Checkpoints that can be trusted: written aside, sealed with a manifest of sha256 hashes and a COMPLETE
marker, then renamed into place. A checkpoint that fails verification is reported and skipped.

Layout: RUN_DIR/checkpoints/step-00000200/{adapter, optimizer, scheduler, rng, trainer_state, manifest.json,
COMPLETE}. Retention keeps the best K by eval loss plus the latest M.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from studio.engine.events import now_iso
from studio.engine.training.faults import raise_if_disk_full

MANIFEST = "manifest.json"
COMPLETE = "COMPLETE"
PREFIX = "step-"


@dataclass(frozen=True)
class CheckpointInfo:
    step: int
    path: Path
    eval_loss: float | None = None
    manifest_sha256: str = ""


def checkpoints_dir(run_dir: Path) -> Path:
    return run_dir / "checkpoints"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def seal(staged: Path, run_dir: Path, step: int, eval_loss: float | None = None) -> CheckpointInfo:
    """Hash every file of a freshly saved checkpoint, mark it complete and move it into place atomically.
    A checkpoint that cannot be sealed (a full disk) is removed, never left looking whole, and the error raised:
    the checkpoints already in place stay as they were."""
    try:
        manifest_sha256 = write_manifest(staged, step=step, eval_loss=eval_loss)
        raise_if_disk_full("disk_full_at_step", step)
        (staged / COMPLETE).write_text("ok\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    target = checkpoints_dir(run_dir) / f"{PREFIX}{step:08d}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # the same step saved again (e.g. stop right after a scheduled save)
        shutil.rmtree(target)
    staged.rename(target)
    return CheckpointInfo(step, target, eval_loss, manifest_sha256)


def verify(path: Path) -> str | None:
    """None when the checkpoint is whole; otherwise what is wrong, in words."""
    if not (path / COMPLETE).exists():
        return "it was never finished (no completion marker)"
    return check_manifest(path)


def write_manifest(folder: Path, **fields: object) -> str:
    """Record the sha256 of every file in `folder` (with `fields`) in its manifest.json, so later damage to any
    of them shows; returns the manifest's own sha256. Shared by checkpoints and the final adapter."""
    files = {
        str(path.relative_to(folder)): _sha256(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name not in {MANIFEST, COMPLETE}
    }
    text = json.dumps({**fields, "created": now_iso(), "files": files}, indent=2, sort_keys=True)
    (folder / MANIFEST).write_text(text, encoding="utf-8")
    return hashlib.sha256(text.encode()).hexdigest()


def check_manifest(folder: Path) -> str | None:
    """None when every file the folder's manifest lists is there with its recorded sha256; otherwise what is
    wrong, in words."""
    try:
        files = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return "its manifest is missing or unreadable"
    if not isinstance(files, dict) or not all(isinstance(value, str) for value in files.values()):
        return "its manifest is missing or unreadable"
    for name, expected in files.items():
        file = folder / name
        if not file.is_file():
            return f"the file {name} is missing"
        if _sha256(file) != expected:
            return f"the file {name} is damaged (its checksum does not match)"
    return None


def _read_manifest(path: Path) -> dict[str, object]:
    try:
        data = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def list_checkpoints(run_dir: Path) -> list[CheckpointInfo]:
    """All sealed-looking checkpoints, oldest first (not verified: that costs a hash of every file)."""
    found = []
    for path in checkpoints_dir(run_dir).glob(f"{PREFIX}*"):
        try:
            step = int(path.name.removeprefix(PREFIX))
        except ValueError:
            continue
        loss = _read_manifest(path).get("eval_loss")
        found.append(CheckpointInfo(step, path, float(loss) if isinstance(loss, (int, float)) else None))
    return sorted(found, key=lambda info: info.step)


def latest_good(
    run_dir: Path, on_damaged: Callable[[CheckpointInfo, str], None] | None = None
) -> CheckpointInfo | None:
    """The newest checkpoint that verifies; damaged ones are reported through `on_damaged` and skipped."""
    for info in reversed(list_checkpoints(run_dir)):
        problem = verify(info.path)
        if problem is None:
            return info
        if on_damaged is not None:
            on_damaged(info, problem)
    return None


def _loss(info: CheckpointInfo) -> float:
    return info.eval_loss if info.eval_loss is not None else math.inf


def apply_retention(run_dir: Path, keep_best: int, keep_last: int) -> list[Path]:
    """Delete checkpoints that are neither among the best K by eval loss nor the latest M."""
    infos = list_checkpoints(run_dir)
    keep = {info.path for info in infos[-keep_last:]} if keep_last else set()
    scored = sorted((info for info in infos if info.eval_loss is not None), key=_loss)
    keep |= {info.path for info in scored[:keep_best]}
    removed = []
    for info in infos:
        if info.path not in keep:
            shutil.rmtree(info.path, ignore_errors=True)
            removed.append(info.path)
    return removed


def best(run_dir: Path) -> CheckpointInfo | None:
    scored = [info for info in list_checkpoints(run_dir) if info.eval_loss is not None]
    return min(scored, key=lambda info: info.eval_loss) if scored else None  # type: ignore[arg-type,return-value]
