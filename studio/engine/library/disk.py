"""Disk use per run, a cleanup plan that frees space without losing anything worth keeping, and deletion.

Nothing is removed without an explicit confirmation: `plan_cleanup` only proposes, `apply_cleanup` and
`delete_run` refuse to act unless called with `confirm=True` (the GUI asks first, the CLI asks or takes
--yes). Only completed runs are cleaned, and of those only intermediate checkpoints (the best by held-out
loss and the last one stay, final/adapter and exports are never touched) and leftover trainer staging.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from studio.engine.errors import StudioError
from studio.engine.runs.folders import CONFIG_FILE, EVENTS_FILE, trainer_staging_dir
from studio.engine.runs.registry import ACTIVE, Registry, RunRecord
from studio.engine.training.checkpoints import CheckpointInfo, checkpoints_dir, list_checkpoints

PARTS = ("checkpoints", "final", "exports", "caches", "other")


def tree_size(path: Path) -> int:
    """Bytes of every file under `path` (a file's own size when it is one); links are not followed."""
    if path.is_symlink():
        return 0
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += (Path(root) / name).lstat().st_size
            except OSError:
                continue
    return total


@dataclass(frozen=True)
class RunUsage:
    run_id: str
    checkpoints: int
    final: int
    exports: int
    caches: int
    other: int

    @property
    def total(self) -> int:
        return self.checkpoints + self.final + self.exports + self.caches + self.other

    def to_dict(self) -> dict[str, int | str]:
        return {"run_id": self.run_id, **{part: getattr(self, part) for part in PARTS}, "total": self.total}


def run_usage(run: RunRecord) -> RunUsage:
    """Where a run's bytes are: checkpoints, final adapter, exports, caches (trainer staging), the rest."""
    sizes = dict.fromkeys(PARTS, 0)
    folders = {"checkpoints": "checkpoints", "final": "final", "exports": "exports",
               trainer_staging_dir(run.run_dir).name: "caches", "cache": "caches"}
    if run.run_dir.is_dir():
        for entry in run.run_dir.iterdir():
            sizes[folders.get(entry.name, "other")] += tree_size(entry)
    return RunUsage(run.id, **sizes)


def format_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TB"


@dataclass(frozen=True)
class CleanupItem:
    run_id: str
    path: Path
    bytes: int
    reason: str


@dataclass(frozen=True)
class CleanupPlan:
    items: list[CleanupItem]
    kept: dict[str, list[Path]]  # run id -> checkpoints deliberately kept (best, last)

    @property
    def total_bytes(self) -> int:
        return sum(item.bytes for item in self.items)

    def to_dict(self) -> dict[str, object]:
        return {
            "total_bytes": self.total_bytes,
            "items": [{"run_id": i.run_id, "path": str(i.path), "bytes": i.bytes, "reason": i.reason}
                      for i in self.items],
            "kept": {rid: [str(p) for p in paths] for rid, paths in self.kept.items()},
        }


def checkpoints_to_keep(run_dir: Path) -> list[CheckpointInfo]:
    """The best checkpoint by held-out loss and the last one (often the same)."""
    infos = list_checkpoints(run_dir)
    if not infos:
        return []
    keep = [infos[-1]]
    scored = [info for info in infos if info.eval_loss is not None]
    if scored:
        best = min(scored, key=lambda info: info.eval_loss)  # type: ignore[arg-type,return-value]
        if best.path != infos[-1].path:
            keep.insert(0, best)
    return keep


def plan_cleanup(runs: Sequence[RunRecord]) -> CleanupPlan:
    """What could go and why; touches nothing."""
    items: list[CleanupItem] = []
    kept: dict[str, list[Path]] = {}
    for run in runs:
        if run.status != "completed" or not run.run_dir.is_dir():
            continue
        keep = checkpoints_to_keep(run.run_dir)
        kept[run.id] = [info.path for info in keep]
        best = keep[0].step if keep else None
        for info in list_checkpoints(run.run_dir):
            if info.path not in kept[run.id]:
                reason = f"intermediate checkpoint at step {info.step} (best is step {best})"
                items.append(CleanupItem(run.id, info.path, tree_size(info.path), reason))
        staging = trainer_staging_dir(run.run_dir)
        if staging.exists():
            items.append(CleanupItem(run.id, staging, tree_size(staging), "leftover trainer files"))
    return CleanupPlan(items, kept)


def apply_cleanup(plan: CleanupPlan, registry: Registry, *, confirm: bool = False) -> int:
    """Remove what the plan lists: returns the bytes freed. A run that became active meanwhile is skipped."""
    _require_confirmation(confirm, "clean up")
    freed = 0
    for item in plan.items:
        run = registry.get(item.run_id)
        if run is None or run.status != "completed" or not _inside(item.path, run.run_dir):
            continue
        if item.path.parent == checkpoints_dir(run.run_dir) and item.path in plan.kept.get(run.id, []):
            continue
        size = tree_size(item.path)
        shutil.rmtree(item.path, ignore_errors=True)
        if not item.path.exists():
            freed += size
    return freed


def delete_run(registry: Registry, run_id: str, *, confirm: bool = False) -> int:
    """Remove a run's folder and its registry row together; returns the bytes freed.

    The folder is first renamed aside (atomic), then the row is deleted; if that fails the folder is put
    back, so the library never lists a run whose files are gone, nor keeps files no run points to.
    Children of the run keep their place in the lineage: they are re-attached to the run's own parent.
    """
    _require_confirmation(confirm, "delete a run")
    registry.reconcile()
    run = registry.get(run_id)
    if run is None:
        raise StudioError(what=f"There is no run with the id '{run_id}'.", why="It may be deleted already.",
                          actions=["Run `studio runs` to see the runs that exist."], code="run_not_found")
    if run.status in ACTIVE:
        raise StudioError(
            what=f"{run.name} {run.version} is still {run.status} and cannot be deleted.",
            why="Its training process is alive and writing into the run folder.",
            actions=["Stop the run first, then delete it.", "Or wait until it finishes."],
            code="run_active",
        )
    folder = run.run_dir
    aside = folder.with_name(f".deleting-{folder.name}")
    moved = False
    size = 0
    if folder.is_dir():
        if not ((folder / CONFIG_FILE).exists() or (folder / EVENTS_FILE).exists()):
            raise StudioError(
                what=f"Studio will not delete {folder}.",
                why="It does not look like a run folder (no config.json or events.jsonl), "
                    "so it may hold other files.",
                actions=["Check the folder by hand and remove it yourself if it is safe.",
                         "Then delete the run again."],
                code="run_dir_unexpected",
            )
        size = tree_size(folder)
        folder.rename(aside)
        moved = True
    try:
        with sqlite3.connect(registry.path, timeout=30) as db:
            db.execute("PRAGMA foreign_keys=ON")
            db.execute("UPDATE runs SET parent_id = ? WHERE parent_id = ?", (run.parent_id, run.id))
            db.execute("DELETE FROM tags WHERE run_id = ?", (run.id,))
            db.execute("DELETE FROM notes WHERE run_id = ?", (run.id,))
            db.execute("DELETE FROM runs WHERE id = ?", (run.id,))
        db.close()
    except sqlite3.Error as exc:
        if moved:
            aside.rename(folder)
        raise StudioError(
            what=f"Studio could not delete {run.name} {run.version}.",
            why=f"The run registry refused the change: {exc}",
            actions=["Close other Studio windows and try again.", "Check that the data folder is writable."],
            code="delete_failed",
        ) from None
    if moved:
        shutil.rmtree(aside, ignore_errors=True)
    return size


def _require_confirmation(confirm: bool, what: str) -> None:
    if not confirm:
        raise StudioError(
            what=f"Studio did not {what} because nobody confirmed it.",
            why="Deleting files cannot be undone, so it needs an explicit confirmation.",
            actions=["Look at what would be removed first (`studio clean --dry-run`).",
                     "Then confirm (`--yes` on the command line)."],
            code="confirmation_required",
        )


def _inside(path: Path, folder: Path) -> bool:
    try:
        return path.resolve().is_relative_to(folder.resolve()) and path.resolve() != folder.resolve()
    except OSError:
        return False
