"""The run registry: versioning rules, status transitions, dead-worker detection, lookup by id or name."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.errors import StudioError
from studio.engine.registry import Registry, bump


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
