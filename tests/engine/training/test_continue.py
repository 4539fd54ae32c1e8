"""Continuing a run: the child starts from the parent's final adapter, not from a fresh one."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.errors import StudioError
from studio.engine.runs.folders import create_run_dir, final_adapter_dir
from studio.engine.runs.registry import Registry
from studio.engine.training.checkpoints import write_manifest
from tests.engine.training.worker_runs import losses, read_events, run_worker_process


def test_continued_run_starts_where_its_parent_ended(make_run, tmp_path: Path) -> None:
    parent_dir = make_run("parent", max_steps=8, eval_fraction=0.0, checkpoint_every_steps=8, learning_rate=1e-2)
    done = run_worker_process(parent_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    parent_curve = losses(read_events(parent_dir))

    registry = Registry()
    parent, config = registry.continue_config(parent_dir.name)
    assert config.init_adapter == str(final_adapter_dir(parent_dir))
    child_dir = create_run_dir(config.updated(max_steps=2), "child", root=tmp_path / "runs")
    child = registry.create_run("child", parent.name, config, child_dir)  # as the dashboard's start_run does
    assert child.parent_id == parent.id and child.version == "1.1.0"

    done = run_worker_process(child_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    child_curve = losses(read_events(child_dir))
    # The same seed gives the same first batch: a fresh adapter would see the parent's first loss again.
    start, end = parent_curve[1], parent_curve[8]
    assert start - end > 0.2, parent_curve
    assert abs(child_curve[1] - end) < abs(child_curve[1] - start), (parent_curve, child_curve)


def test_continue_needs_a_finished_parent(tmp_path: Path) -> None:
    registry = Registry()
    run_dir = create_run_dir(TrainConfig(), "unfinished", root=tmp_path / "runs")
    registry.create_run("unfinished", "unfinished", TrainConfig(), run_dir)
    with pytest.raises(StudioError) as caught:
        registry.continue_config("unfinished")
    assert caught.value.code == "adapter_missing" and "first checkpoint" in caught.value.why


def test_continue_refuses_a_damaged_final_adapter_and_takes_one_from_before_manifests(tmp_path: Path) -> None:
    registry = Registry()
    run_dir = create_run_dir(TrainConfig(), "parent", root=tmp_path / "runs")
    registry.create_run("parent", "parent", TrainConfig(), run_dir)
    adapter = final_adapter_dir(run_dir)
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"\1" * 64)
    assert registry.continue_config("parent")[1].init_adapter == str(adapter)  # no manifest: an older run
    write_manifest(adapter)
    (adapter / "adapter_model.safetensors").write_bytes(b"\1" * 32)  # truncated after it was saved
    with pytest.raises(StudioError) as caught:
        registry.continue_config("parent")
    assert caught.value.code == "adapter_damaged" and "adapter_model.safetensors" in caught.value.why


def test_init_adapter_must_be_a_path() -> None:
    with pytest.raises(StudioError):
        TrainConfig.from_dict({"init_adapter": ""})
