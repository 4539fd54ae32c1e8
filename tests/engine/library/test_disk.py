"""Disk use, cleanup and deletion on real runs: exact bytes, the best and the last checkpoint survive."""

from __future__ import annotations

import json
import sqlite3

import pytest

from studio.engine.errors import StudioError
from studio.engine.library.disk import apply_cleanup, delete_run, plan_cleanup, run_usage, tree_size
from studio.engine.training.checkpoints import list_checkpoints


def test_usage_adds_up(library):
    usage = run_usage(library.parent)
    assert usage.checkpoints == tree_size(library.parent.run_dir / "checkpoints") > 0
    assert usage.final == tree_size(library.parent.run_dir / "final") > 0
    assert usage.total == tree_size(library.parent.run_dir)


def test_cleanup_frees_the_expected_bytes_and_keeps_best_and_final(library):
    run_dir = library.parent.run_dir
    infos = list_checkpoints(run_dir)
    assert [info.step for info in infos] == [1, 2, 3]
    # Make the middle checkpoint the best one, so "best" and "last" are two different checkpoints.
    manifest = infos[1].path / "manifest.json"
    data = json.loads(manifest.read_text())
    data["eval_loss"] = 0.001
    manifest.write_text(json.dumps(data))
    before = tree_size(run_dir)
    plan = plan_cleanup(library.registry.list_runs())
    mine = [item for item in plan.items if item.run_id == library.parent.id]
    assert [item.path for item in mine if item.path.parent.name == "checkpoints"] == [infos[0].path]
    assert {item.path.name for item in mine} <= {infos[0].path.name, ".staging"}  # + trainer leftovers
    assert plan.kept[library.parent.id] == [infos[1].path, infos[2].path]
    expected = sum(tree_size(item.path) for item in mine)
    assert sum(item.bytes for item in mine) == expected >= tree_size(infos[0].path) > 0

    with pytest.raises(StudioError) as info:
        apply_cleanup(plan, library.registry)
    assert info.value.code == "confirmation_required" and infos[0].path.exists()

    freed = apply_cleanup(plan, library.registry, confirm=True)
    assert freed == plan.total_bytes
    assert before - tree_size(run_dir) == expected
    assert [i.step for i in list_checkpoints(run_dir)] == [2, 3]
    assert (run_dir / "final" / "adapter" / "adapter_model.safetensors").exists()


def test_cleanup_leaves_runs_that_are_not_completed(library):
    library.registry.set_status(library.child.id, "stopped")
    plan = plan_cleanup(library.registry.list_runs())
    assert all(item.run_id != library.child.id for item in plan.items)


def test_delete_removes_files_and_row_together(library, studio_home):
    library.registry.add_tag(library.parent.id, "keeper")
    with pytest.raises(StudioError):
        delete_run(library.registry, library.parent.id)
    assert library.parent.run_dir.exists()
    size = tree_size(library.parent.run_dir)
    freed = delete_run(library.registry, library.parent.id, confirm=True)
    assert freed == size
    assert not library.parent.run_dir.exists()
    assert library.registry.get(library.parent.id) is None
    assert not list((studio_home / "runs").glob(".deleting-*"))
    child = library.registry.get(library.child.id)
    assert child is not None and child.parent_id is None  # re-attached to the deleted run's own parent
    with sqlite3.connect(library.registry.path) as db:
        count = db.execute("SELECT COUNT(*) FROM tags WHERE run_id = ?", (library.parent.id,)).fetchone()[0]
    assert count == 0


def test_delete_refuses_an_active_run(library):
    import os

    library.registry.mark_running(library.child.id, pid=os.getpid())
    with pytest.raises(StudioError) as info:
        delete_run(library.registry, library.child.id, confirm=True)
    assert info.value.code == "run_active"
    assert library.child.run_dir.exists() and library.registry.get(library.child.id) is not None
