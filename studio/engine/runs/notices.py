"""Notices: things that happened while nobody was watching (a queued run failed, a retrain was not made
active, a watched dataset changed but no longer validates). Kept in the registry so the app shows them at
its next start as well as live; `studio queue list` prints the unseen ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from studio.engine.events import now_iso
from studio.engine.runs.registry import Registry

Level = Literal["info", "warning", "error"]


@dataclass(frozen=True)
class Notice:
    id: int
    created_at: str
    level: str
    title: str
    message: str
    run_id: str | None


def add_notice(registry: Registry, level: Level, title: str, message: str, run_id: str | None = None) -> None:
    with registry.connect() as db:
        db.execute(
            "INSERT INTO notices (created_at, level, title, message, run_id) VALUES (?, ?, ?, ?, ?)",
            (now_iso(), level, title, message, run_id),
        )


def unseen_notices(registry: Registry, mark_seen: bool = True) -> list[Notice]:
    """The notices nobody has read yet, oldest first; reading them marks them read unless told otherwise."""
    with registry.connect() as db:
        rows = db.execute(
            "SELECT id, created_at, level, title, message, run_id FROM notices WHERE seen = 0 ORDER BY id"
        ).fetchall()
        if mark_seen and rows:
            db.execute("UPDATE notices SET seen = 1 WHERE id <= ?", (rows[-1]["id"],))
    return [Notice(**dict(row)) for row in rows]
