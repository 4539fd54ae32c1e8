"""Checkpoints that can be trusted: written aside, sealed with a manifest of sha256 hashes and a COMPLETE
marker, then renamed into place. A checkpoint that fails verification is reported and skipped.

Layout: RUN_DIR/checkpoints/step-00000200/{adapter, optimizer, scheduler, rng, trainer_state, manifest.json,
COMPLETE}. Retention keeps the best K by eval loss plus the latest M.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from studio.engine.events import now_iso

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
    """Hash every file of a freshly saved checkpoint, mark it complete and move it into place atomically."""
    files = {
        str(path.relative_to(staged)): _sha256(path)
        for path in sorted(staged.rglob("*"))
        if path.is_file() and path.name not in {MANIFEST, COMPLETE}
    }
    manifest = {"step": step, "eval_loss": eval_loss, "created": now_iso(), "files": files}
    text = json.dumps(manifest, indent=2, sort_keys=True)
    (staged / MANIFEST).write_text(text, encoding="utf-8")
    (staged / COMPLETE).write_text("ok\n", encoding="utf-8")
    target = checkpoints_dir(run_dir) / f"{PREFIX}{step:08d}"
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():  # the same step saved again (e.g. stop right after a scheduled save)
        shutil.rmtree(target)
    staged.rename(target)
    return CheckpointInfo(step, target, eval_loss, hashlib.sha256(text.encode()).hexdigest())


def verify(path: Path) -> str | None:
    """None when the checkpoint is whole; otherwise what is wrong, in words."""
    if not (path / COMPLETE).exists():
        return "it was never finished (no completion marker)"
    try:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        files: dict[str, str] = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return "its manifest is missing or unreadable"
    for name, expected in files.items():
        file = path / name
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


def apply_retention(run_dir: Path, keep_best: int, keep_last: int) -> list[Path]:
    """Delete checkpoints that are neither among the best K by eval loss nor the latest M."""
    infos = list_checkpoints(run_dir)
    keep = {info.path for info in infos[-keep_last:]} if keep_last else set()
    scored = sorted((info for info in infos if info.eval_loss is not None), key=lambda info: info.eval_loss)
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
