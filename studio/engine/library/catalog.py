"""The library's rows: each run with its tags, notes, size on disk and best held-out loss, and the filter
the library's search box applies. Tag removal lives here because the registry only adds tags.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from studio.engine.runs.registry import Registry, RunRecord

RESUMABLE = frozenset({"paused", "interrupted", "stopped"})
# Runs whose results can be used: a stopped or interrupted one through its last verified checkpoint.
USABLE = frozenset({"completed", "stopped", "interrupted"})


@dataclass(frozen=True)
class LibraryRow:
    run: RunRecord
    tags: tuple[str, ...]
    notes: tuple[str, ...]
    size_bytes: int
    best_eval_loss: float | None

    @property
    def dataset_name(self) -> str:
        return Path(self.run.dataset).name if self.run.dataset else ""

    @property
    def model_name(self) -> str:
        base = self.run.base_model or ""
        return Path(base).name if "/" in base and Path(base).is_absolute() else base

    def matches(self, text: str = "", status: str = "", tag: str = "") -> bool:
        """Every word must occur in name, version, id, model, dataset, tags or notes."""
        if status and self.run.status != status:
            return False
        if tag and tag not in self.tags:
            return False
        needle = text.strip().lower()
        if not needle:
            return True
        haystack = " ".join([self.run.name, self.run.version, self.run.id, self.model_name, self.dataset_name,
                             *self.tags, *self.notes]).lower()
        return all(word in haystack for word in needle.split())


def library_rows(registry: Registry) -> list[LibraryRow]:
    """Every run, newest first; walks each run folder for its size, so call it off the GUI thread."""
    from studio.engine.library.compare import run_metrics
    from studio.engine.library.disk import run_usage

    rows = []
    for run in registry.list_runs():
        best = run_metrics(run)["best_eval_loss"]
        rows.append(LibraryRow(run, tuple(registry.tags(run.id)), tuple(registry.notes(run.id)),
                               run_usage(run).total, best if best is None or math.isfinite(best) else None))
    return rows


def remove_tag(registry: Registry, run_id: str, tag: str) -> None:
    with sqlite3.connect(registry.path, timeout=30) as db:
        db.execute("DELETE FROM tags WHERE run_id = ? AND tag = ?", (run_id, tag))
    db.close()
