"""The run registry: versioning rules, status transitions, dead-worker detection, lookup by id or name."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.errors import StudioError
from studio.engine.runs.registry import MIGRATIONS, SCHEMA_VERSION, Registry, bump


def _config(**changes: object) -> TrainConfig:
    return TrainConfig.from_dict({"dataset_path": "/data/a.jsonl", **changes})


def test_versioning_rules(tmp_path: Path):
    registry = Registry()
    first = registry.create_run("r1", "pip", _config(), tmp_path / "r1")
    assert first.version == "1.0.0" and first.parent_id is None
    assert registry.create_run("r2", "pip", _config(learning_rate=1e-4), tmp_path / "r2").version == "1.0.1"
    assert (
        registry.create_run(
            "r3", "pip", _config(learning_rate=1e-4), tmp_path / "r3", kind="continue"
        ).version
        == "1.1.0"
    )
    major = registry.create_run("r4", "pip", _config(dataset_path="/data/b.jsonl"), tmp_path / "r4")
    assert major.version == "2.0.0" and major.parent_id == "r3"
    assert (
        registry.create_run(
            "r5", "pip", _config(dataset_path="/data/b.jsonl", base_model="org/other"), tmp_path / "r5"
        ).version
        == "3.0.0"
    )
    # two children of one parent: the second takes the next free patch
    assert registry.create_run("r6", "pip", _config(), tmp_path / "r6", parent_id="r1").version == "1.0.2"
    assert registry.create_run("r7", "pip", _config(), tmp_path / "r7", parent_id="r1").version == "1.0.3"
    assert registry.create_run("o1", "other", _config(), tmp_path / "o1").version == "1.0.0"
    assert [r.id for r in registry.list_runs()][:2] == ["o1", "r7"]


def test_bump():
    assert bump("1.2.3", "major") == "2.0.0"
    assert bump("1.2.3", "minor") == "1.3.0"
    assert bump("1.2.3", "patch") == "1.2.4"


def test_status_lifecycle_and_find(tmp_path: Path):
    registry = Registry()
    registry.create_run("20261123-aaaa", "pip", _config(), tmp_path)
    registry.mark_running("20261123-aaaa")
    record = registry.find("20261123-a")
    assert record.status == "running" and record.started_at and record.pid
    registry.mark_finished("20261123-aaaa", "completed", 0, metrics={"final_loss": 1.5}, peak_memory=123)
    record = registry.find("pip")
    assert (record.status, record.exit_code, record.metrics, record.peak_memory) == (
        "completed",
        0,
        {"final_loss": 1.5},
        123,
    )
    assert registry.find("pip@1.0.0").id == "20261123-aaaa"
    with pytest.raises(StudioError):
        registry.find("nothing-like-this")


def test_dead_worker_becomes_interrupted(tmp_path: Path):
    registry = Registry()
    registry.create_run("r1", "pip", _config(), tmp_path)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    registry.mark_running("r1", pid=child.pid)
    assert registry.reconcile() == []
    child.kill()
    child.wait()
    assert registry.reconcile() == ["r1"]
    assert registry.get("r1").status == "interrupted"


def test_wal_mode_and_tags_notes(tmp_path: Path):
    import sqlite3

    registry = Registry()
    registry.create_run("r1", "pip", _config(), tmp_path)
    registry.add_tag("r1", "best")
    registry.add_note("r1", "kind persona")
    assert registry.tags("r1") == ["best"] and registry.notes("r1") == ["kind persona"]
    with sqlite3.connect(registry.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def _create_runs(home: str, worker: int, count: int) -> None:
    os.environ["STUDIO_HOME"] = home
    registry = Registry()
    for i in range(count):
        registry.create_run(f"w{worker}-{i}", "shared", _config(learning_rate=1e-4 * (i + 1)),
                            Path(home) / f"w{worker}-{i}")


def test_two_processes_creating_runs_of_one_name_never_collide_on_a_version(studio_home: Path):
    Registry()  # created once, as the app does before anything else
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_create_runs, args=(str(studio_home), n, 50)) for n in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    runs = Registry().list_runs()
    assert len(runs) == 100
    assert len({run.version for run in runs}) == 100


def _open_when_told(path: str, go: str) -> None:
    while not os.path.exists(go):
        time.sleep(0.001)
    Registry(Path(path)).training_runs()


def test_processes_opening_a_new_registry_at_the_same_moment_all_get_it(tmp_path: Path):
    """`studio train` and `studio runs` (or the app and the queue runner) on a fresh Studio home: one creates
    and migrates the file while the others switch it to WAL; before, they failed with 'database is locked'."""
    context = multiprocessing.get_context("spawn")
    for attempt in range(6):
        path, go = tmp_path / f"studio-{attempt}.sqlite", tmp_path / f"go-{attempt}"
        openers = [context.Process(target=_open_when_told, args=(str(path), str(go))) for _ in range(4)]
        for opener in openers:
            opener.start()
        time.sleep(1.0)  # all four are waiting, their imports done
        go.touch()
        for opener in openers:
            opener.join(60)
        assert [opener.exitcode for opener in openers] == [0, 0, 0, 0], attempt
        assert _user_version(path) == SCHEMA_VERSION


_VERSION_1_SCHEMA = """
CREATE TABLE runs (id TEXT PRIMARY KEY, name TEXT NOT NULL, version TEXT NOT NULL,
    parent_id TEXT REFERENCES runs(id), status TEXT NOT NULL, config TEXT NOT NULL, dataset TEXT, base_model TEXT,
    created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT, metrics TEXT, peak_memory INTEGER,
    run_dir TEXT NOT NULL, pid INTEGER, pid_started REAL, exit_code INTEGER, UNIQUE (name, version));
CREATE TABLE tags (run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE, tag TEXT NOT NULL,
    PRIMARY KEY (run_id, tag));
CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL REFERENCES runs(id)
    ON DELETE CASCADE, created_at TEXT NOT NULL, text TEXT NOT NULL);
INSERT INTO runs (id, name, version, status, config, created_at, run_dir)
    VALUES ('old', 'pip', '1.0.0', 'completed', '{}', '2026-01-01T00:00:00Z', '/runs/old');
PRAGMA user_version = 1;
"""


def _user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA user_version").fetchone()[0]


def test_an_old_registry_is_migrated_in_order_and_keeps_its_runs(tmp_path: Path):
    path = tmp_path / "studio.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(_VERSION_1_SCHEMA)
    registry = Registry(path)
    assert _user_version(path) == SCHEMA_VERSION == len(MIGRATIONS)
    assert registry.get("old").version == "1.0.0"
    with sqlite3.connect(path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"queue", "schedules", "active_versions", "notices"} <= tables
    Registry(path)  # opening again changes nothing
    assert _user_version(path) == SCHEMA_VERSION and registry.get("old") is not None


def test_a_registry_from_a_newer_studio_is_refused_plainly(tmp_path: Path):
    path = tmp_path / "studio.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StudioError, match="newer version of Studio") as error:
        Registry(path)
    assert error.value.code == "registry_too_new"


def test_training_runs_are_those_with_a_live_worker(tmp_path: Path):
    registry = Registry()
    registry.create_run("alive", "a", _config(), tmp_path / "alive")
    registry.create_run("gone", "b", _config(), tmp_path / "gone")
    registry.create_run("queued", "c", _config(), tmp_path / "queued")
    registry.mark_running("alive")  # this test process
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    registry.mark_running("gone", pid=dead.pid)
    assert [run.id for run in registry.training_runs()] == ["alive"]
