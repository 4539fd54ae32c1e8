"""The run registry: one SQLite database (WAL mode, so the GUI can read while a worker writes) listing every
run with its name, semantic version, parent, status, timings, final metrics and peak memory. A run's settings
live only in its folder's config.json (studio.engine.runs); the registry keeps just the dataset and base model
it indexes and versions by.

Versioning rules (docs/versioning.md):
  - a run with no parent (a new name) is 1.0.0;
  - a run whose parent is the latest run of the same name, trained on a different dataset or base model,
    bumps MAJOR (2.0.0);
  - continuing training from a parent's adapter (`kind="continue"`) bumps MINOR (1.1.0);
  - the same recipe re-run with changed hyperparameters (or unchanged: a repeat) bumps PATCH (1.0.1).
Versions are unique per name; a clash (two children of one parent) bumps the same part again.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from studio.engine.errors import StudioError
from studio.engine.events import now_iso
from studio.engine.paths import database_path
from studio.engine.runs.folders import final_adapter_dir, load_run_config, run_settings

if TYPE_CHECKING:  # pydantic stays out of GUI start-up, which lists runs
    from studio.engine.config import TrainConfig

Status = Literal["queued", "running", "paused", "interrupted", "failed", "stopped", "completed"]
VersionKind = Literal["auto", "continue"]
ACTIVE: frozenset[str] = frozenset({"running", "paused"})
WAL_SWITCH_TIMEOUT_S = 30.0  # as long as SQLite itself waits for a lock (sqlite3.connect's timeout)
# Numbered migrations, applied in order to a registry whose `PRAGMA user_version` is below their number.
# Append new ones; never edit a released one. (Versions 1 and 2 were first written as CREATE IF NOT EXISTS
# scripts run on every open, so they stay safe to apply to a registry that already has their tables.)
MIGRATIONS: tuple[str, ...] = (
    # 1: runs, their tags and notes.
    """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    parent_id TEXT REFERENCES runs(id),
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    dataset TEXT,
    base_model TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    metrics TEXT,
    peak_memory INTEGER,
    run_dir TEXT NOT NULL,
    pid INTEGER,
    pid_started REAL,
    exit_code INTEGER,
    UNIQUE (name, version)
);
CREATE INDEX IF NOT EXISTS runs_name ON runs(name, created_at);
CREATE TABLE IF NOT EXISTS tags (
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (run_id, tag)
);
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    text TEXT NOT NULL
);
""",
    # 2: the run queue, recurring schedules, the active version of each model line, notices.
    """CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE REFERENCES runs(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    state TEXT NOT NULL,
    not_before TEXT,
    when_idle INTEGER NOT NULL DEFAULT 0,
    schedule_id INTEGER REFERENCES schedules(id) ON DELETE SET NULL,
    estimate_s REAL,
    added_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    outcome TEXT
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS schedules (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    config TEXT NOT NULL,
    cron TEXT,
    watch INTEGER NOT NULL DEFAULT 0,
    when_idle INTEGER NOT NULL DEFAULT 0,
    dataset_hash TEXT,
    last_queued TEXT,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS active_versions (
    name TEXT PRIMARY KEY,
    run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    since TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS activations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    run_id TEXT,
    previous_id TEXT,
    at TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at TEXT NOT NULL,
    level TEXT NOT NULL,
    title TEXT NOT NULL,
    message TEXT NOT NULL,
    run_id TEXT,
    seen INTEGER NOT NULL DEFAULT 0
);
""",
    # 3: the settings live only in each run's config.json: the copy kept here was never updated, and two
    # copies can only drift apart (SQLite 3.35 or later, as Python 3.10's own builds bring).
    "ALTER TABLE runs DROP COLUMN config;",
)
SCHEMA_VERSION = len(MIGRATIONS)


_LATEST_NAMED = "SELECT * FROM runs WHERE name = ? ORDER BY created_at DESC, rowid DESC LIMIT 1"


@dataclass(frozen=True)
class RunRecord:
    id: str
    name: str
    version: str
    parent_id: str | None
    status: str
    dataset: str | None
    base_model: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    metrics: dict[str, Any]
    peak_memory: int | None
    run_dir: Path
    pid: int | None
    exit_code: int | None

    @cached_property
    def config(self) -> dict[str, Any]:
        """The run's settings, read once from its config.json (the one copy there is)."""
        return run_settings(self.run_dir)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for item in fields(self):
            data[item.name] = getattr(self, item.name)
            if item.name == "status":  # where the settings stood when the registry kept a copy
                data["config"] = self.config
        data["run_dir"] = str(self.run_dir)
        return data


def bump(version: str, part: Literal["major", "minor", "patch"]) -> str:
    major, minor, patch = (int(x) for x in version.split("."))
    if part == "major":
        return f"{major + 1}.0.0"
    if part == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def version_part(
    parent: RunRecord, config: TrainConfig, kind: VersionKind
) -> Literal["major", "minor", "patch"]:
    """Which part of the parent's version a new run bumps (the documented rules, as one pure function)."""
    if config.dataset_path != parent.dataset or config.base_model != parent.base_model:
        return "major"
    if kind == "continue":
        return "minor"
    return "patch"


def _process_started(pid: int) -> float | None:
    import psutil

    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


class Registry:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or database_path()
        self._migrate()

    def _migrate(self) -> None:
        """Bring the database to SCHEMA_VERSION, one numbered migration at a time, each with its version
        bump in one transaction (a crash mid-way leaves the last whole version)."""
        with self.connect() as db:
            if db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                return  # the common case takes no write lock
            db.execute("BEGIN IMMEDIATE")  # two processes opening an old registry migrate it once
            current = db.execute("PRAGMA user_version").fetchone()[0]
            if current > SCHEMA_VERSION:
                raise StudioError(
                    what="The run registry was written by a newer version of Studio.",
                    why=f"{self.path} is at schema version {current}; this Studio knows up to {SCHEMA_VERSION}.",
                    actions=[
                        "Update Studio to the version that made this registry.",
                        "Or set STUDIO_HOME to another folder to keep this one untouched.",
                    ],
                    code="registry_too_new",
                )
            for number in range(current + 1, SCHEMA_VERSION + 1):
                for statement in _statements(MIGRATIONS[number - 1]):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    def _use_wal(self, db: sqlite3.Connection) -> None:
        """Switch a new registry to WAL once (the mode stays with the file). The switch needs the file to
        itself and SQLite does not wait for that, so two processes opening a fresh registry together (the app
        and the queue runner, `studio train` and `studio runs`) retry here instead of failing as locked."""
        if db.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
            return
        deadline = time.monotonic() + WAL_SWITCH_TIMEOUT_S
        while True:
            try:
                db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    db.close()
                    raise StudioError(
                        what="Studio could not open its run registry: another Studio program keeps it busy.",
                        why=f"{self.path} stayed locked for {WAL_SWITCH_TIMEOUT_S:.0f} seconds.",
                        actions=["Wait a moment and try again.",
                                 "Close other Studio windows or `studio queue run` and try again."],
                        code="registry_busy",
                    ) from None
                time.sleep(0.02)

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=30)
        except sqlite3.Error as exc:
            raise StudioError(
                what="Studio could not open its run registry.",
                why=f"{self.path}: {exc}",
                actions=["Check that the data folder is writable.", "Set STUDIO_HOME to another folder."],
                code="registry_unavailable",
            ) from None
        db.row_factory = sqlite3.Row
        self._use_wal(db)
        db.execute("PRAGMA foreign_keys=ON")
        try:
            with db:
                yield db
        finally:
            db.close()

    # ---- creating -----------------------------------------------------------------------------------

    def create_run(
        self,
        run_id: str,
        name: str,
        config: TrainConfig,
        run_dir: Path,
        parent_id: str | None = None,
        kind: VersionKind = "auto",
    ) -> RunRecord:
        """Register a queued run (studio.engine.runs.new_run, which also writes its folder, is the one caller
        outside tests). The parent defaults to the run whose adapter the config starts from
        (`init_adapter`, which makes it a continuation), else the latest run of the same name."""
        origin = self.adapter_owner(config.init_adapter) if config.init_adapter else None
        with self.connect() as db:
            # The version is chosen and taken in one write transaction: two processes creating runs of the
            # same name at once (the app and the queue runner) queue up here instead of colliding.
            db.execute("BEGIN IMMEDIATE")
            parent = _record_or_none(
                db.execute("SELECT * FROM runs WHERE id = ?", (parent_id,)).fetchone()
                if parent_id
                else None
            )
            parent = parent or origin or _record_or_none(db.execute(_LATEST_NAMED, (name,)).fetchone())
            if kind == "auto" and origin is not None and parent is not None and origin.id == parent.id:
                kind = "continue"
            part = "patch" if parent is None else version_part(parent, config, kind)
            version = "1.0.0" if parent is None else bump(parent.version, part)
            taken = {row[0] for row in db.execute("SELECT version FROM runs WHERE name = ?", (name,))}
            while version in taken:
                version = bump(version, part)
            db.execute(
                "INSERT INTO runs (id, name, version, parent_id, status, dataset, base_model, created_at, "
                "run_dir) VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
                (
                    run_id,
                    name,
                    version,
                    parent.id if parent else None,
                    config.dataset_path,
                    config.base_model,
                    now_iso(),
                    str(run_dir),
                ),
            )
        record = self.get(run_id)
        assert record is not None
        return record

    def continue_config(self, ref: str) -> tuple[RunRecord, TrainConfig]:
        """The parent run and the config of a run continuing it: the same recipe, starting from the parent's
        final adapter (or, for a run stopped early, its last verified checkpoint). Pass both to the usual run
        creation (`runs.new_run`, which makes it a minor version). When the playground added corrected answers
        to a copy of the parent's dataset, the continuation trains on that copy (a new dataset: a major version)."""
        parent = self.find(ref)
        from studio.engine.library.conversations import corrected_dataset
        from studio.engine.training.final_adapter import usable_adapter

        adapter = usable_adapter(parent.run_dir, f"{parent.name} {parent.version}").path
        config = load_run_config(parent.run_dir).updated(init_adapter=str(adapter), compare_adapter=None)
        corrected = corrected_dataset(parent.run_dir)
        return parent, config.updated(dataset_path=str(corrected)) if corrected.is_file() else config

    # ---- reading ------------------------------------------------------------------------------------

    def adapter_owner(self, adapter: str | Path) -> RunRecord | None:
        """The run whose final adapter lives in that folder, if any."""
        target = Path(adapter).expanduser().resolve()
        with self.connect() as db:
            rows = db.execute("SELECT * FROM runs ORDER BY created_at DESC").fetchall()
        return next(
            (_record(row) for row in rows if final_adapter_dir(Path(row["run_dir"])).resolve() == target), None
        )

    def get(self, run_id: str) -> RunRecord | None:
        with self.connect() as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _record(row) if row else None

    def find(self, ref: str) -> RunRecord:
        """A run by id, unique id prefix, or name (its latest version), or `name@version`."""
        name, _, version = ref.partition("@")
        with self.connect() as db:
            if version:
                rows = db.execute(
                    "SELECT * FROM runs WHERE name = ? AND version = ?", (name, version)
                ).fetchall()
            else:
                rows = (
                    db.execute("SELECT * FROM runs WHERE id = ?", (ref,)).fetchall()
                    or db.execute(
                        "SELECT * FROM runs WHERE id LIKE ? ORDER BY created_at", (ref + "%",)
                    ).fetchall()
                    or db.execute(
                        "SELECT * FROM runs WHERE name = ? ORDER BY created_at DESC LIMIT 1", (ref,)
                    ).fetchall()
                )
        if len(rows) != 1:
            raise StudioError(
                what=f"There is no single run called '{ref}'."
                if rows
                else f"There is no run called '{ref}'.",
                why="Several runs start with those letters." if rows else "No run id or name matches it.",
                actions=["Run `studio runs` to see the runs and their ids.", "Pass the full run id."],
                code="run_not_found",
            )
        return _record(rows[0])

    def latest_named(self, name: str) -> RunRecord | None:
        with self.connect() as db:
            return _record_or_none(db.execute(_LATEST_NAMED, (name,)).fetchone())

    def list_runs(self) -> list[RunRecord]:
        self.reconcile()
        with self.connect() as db:
            rows = db.execute("SELECT * FROM runs ORDER BY created_at DESC, rowid DESC").fetchall()
        return [_record(row) for row in rows]

    def training_runs(self) -> list[RunRecord]:
        """Runs whose worker is alive now (training, or paused holding its memory)."""
        return [record for record in self.list_runs() if record.status in ACTIVE and record.pid is not None]

    # ---- status -------------------------------------------------------------------------------------

    def mark_running(self, run_id: str, pid: int | None = None) -> None:
        pid = pid or os.getpid()
        with self.connect() as db:
            db.execute(
                "UPDATE runs SET status = 'running', pid = ?, pid_started = ?, exit_code = NULL, finished_at = NULL,"
                " started_at = COALESCE(started_at, ?) WHERE id = ?",
                (pid, _process_started(pid), now_iso(), run_id),
            )

    def set_status(self, run_id: str, status: Status) -> None:
        with self.connect() as db:
            # A status without a live worker forgets the pid, so nobody sends commands to a stranger.
            keep_pid = status in ACTIVE
            db.execute(
                "UPDATE runs SET status = ?, pid = CASE WHEN ? THEN pid ELSE NULL END WHERE id = ?",
                (status, keep_pid, run_id),
            )

    def mark_finished(
        self,
        run_id: str,
        status: Status,
        exit_code: int,
        metrics: dict[str, Any] | None = None,
        peak_memory: int | None = None,
    ) -> None:
        with self.connect() as db:
            db.execute(
                "UPDATE runs SET status = ?, exit_code = ?, finished_at = ?, pid = NULL,"
                " metrics = COALESCE(?, metrics), peak_memory = MAX(COALESCE(peak_memory, 0), COALESCE(?, 0))"
                " WHERE id = ?",
                (
                    status,
                    exit_code,
                    now_iso(),
                    json.dumps(metrics) if metrics is not None else None,
                    peak_memory,
                    run_id,
                ),
            )
            if status == "completed":
                _adopt_if_first(db, run_id)

    def reconcile(self) -> list[str]:
        """Runs marked active whose worker is gone (killed, crashed machine) become 'interrupted'.
        A run paused with its memory released has no worker (pid NULL) and stays 'paused'."""
        with self.connect() as db:
            rows = db.execute(
                "SELECT id, pid, pid_started FROM runs WHERE status IN ('running', 'paused') AND pid IS NOT NULL"
            ).fetchall()
        dead = [row["id"] for row in rows if not _alive(row["pid"], row["pid_started"])]
        if dead:
            with self.connect() as db:
                db.executemany(
                    "UPDATE runs SET status = 'interrupted', pid = NULL WHERE id = ?",
                    [(run_id,) for run_id in dead],
                )
        return dead

    # ---- tags and notes -----------------------------------------------------------------------------

    def add_tag(self, run_id: str, tag: str) -> None:
        with self.connect() as db:
            db.execute("INSERT OR IGNORE INTO tags (run_id, tag) VALUES (?, ?)", (run_id, tag))

    def tags(self, run_id: str) -> list[str]:
        with self.connect() as db:
            return [
                row[0] for row in db.execute("SELECT tag FROM tags WHERE run_id = ? ORDER BY tag", (run_id,))
            ]

    def add_note(self, run_id: str, text: str) -> None:
        with self.connect() as db:
            db.execute(
                "INSERT INTO notes (run_id, created_at, text) VALUES (?, ?, ?)", (run_id, now_iso(), text)
            )

    def notes(self, run_id: str) -> list[str]:
        with self.connect() as db:
            return [
                row[0] for row in db.execute("SELECT text FROM notes WHERE run_id = ? ORDER BY id", (run_id,))
            ]


def _adopt_if_first(db: sqlite3.Connection, run_id: str) -> None:
    """The first finished version of a model line becomes its active version; later ones need a click or a
    passed comparison (studio.engine.runs.active)."""
    inserted = db.execute(
        "INSERT OR IGNORE INTO active_versions (name, run_id, since) SELECT name, id, ? FROM runs WHERE id = ?",
        (now_iso(), run_id),
    ).rowcount
    if inserted:
        db.execute(
            "INSERT INTO activations (name, run_id, previous_id, at, reason) "
            "SELECT name, id, NULL, ?, 'the first finished version' FROM runs WHERE id = ?",
            (now_iso(), run_id),
        )


def _alive(pid: int | None, started: float | None) -> bool:
    if pid is None:
        return False
    current = _process_started(pid)
    if current is None:
        return False
    if started is not None and abs(current - started) > 1.0:  # the pid was reused by another process
        return False
    import psutil

    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def _statements(script: str) -> list[str]:
    """A migration script as single statements, so they run inside the migration's own transaction
    (executescript would commit it first)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        if line.lstrip().startswith("--"):
            continue
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return statements


def _record_or_none(row: sqlite3.Row | None) -> RunRecord | None:
    return _record(row) if row is not None else None


def _record(row: sqlite3.Row) -> RunRecord:
    return RunRecord(
        id=row["id"],
        name=row["name"],
        version=row["version"],
        parent_id=row["parent_id"],
        status=row["status"],
        dataset=row["dataset"],
        base_model=row["base_model"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        metrics=json.loads(row["metrics"]) if row["metrics"] else {},
        peak_memory=row["peak_memory"],
        run_dir=Path(row["run_dir"]),
        pid=row["pid"],
        exit_code=row["exit_code"],
    )
