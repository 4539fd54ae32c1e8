"""Merging runs: combine the adapters of several runs into a new, registered and versioned run.

The result is an ordinary completed run (config.json + final/adapter + registry row), so it can be
exported, compared and merged again like any run Studio trained.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from studio.engine.errors import StudioError
from studio.engine.export.merge_adapters import MergeMethod, merge_adapters
from studio.engine.export.progress import export_steps
from studio.engine.export.run_info import load_run_info
from studio.engine.models.resolve import resolve_model
from studio.engine.progress import QUIET, TaskContext
from studio.engine.runs.creation import new_run
from studio.engine.runs.folders import final_adapter_dir
from studio.engine.runs.registry import Registry, RunRecord
from studio.engine.training.checkpoints import write_manifest


def merge_runs(
    run_dirs: list[Path],
    method: MergeMethod = "ties",
    weights: list[float] | None = None,
    density: float = 0.5,
    name: str | None = None,
    *,
    task: TaskContext = QUIET,
) -> RunRecord:
    """A new completed run whose adapter merges those of `run_dirs` (which must share a base model)."""
    infos = [load_run_info(run_dir) for run_dir in run_dirs]
    bases = sorted({info.base_model for info in infos})
    if len(bases) != 1:
        raise StudioError(
            what="These runs were trained on different base models, so their adapters cannot be merged.",
            why=f"Base models: {', '.join(bases)}.",
            actions=["Merge only runs of the same base model (see `studio runs`)."],
            code="merge_base_mismatch",
        )
    base_path = resolve_model(bases[0])
    config = next((info.config for info in infos if info.config), None)
    if config is None:
        raise StudioError(
            what="None of these runs has a config.json to start the merged run from.",
            why="Studio needs one run's settings to record how the merged run came about.",
            actions=["Merge runs that Studio trained (their folders hold config.json)."],
            code="merge_invalid",
        )
    registry = Registry()
    parent = registry.get(infos[0].run_id)
    record = new_run(registry, config, name or f"merge-{method}", parent_id=parent.id if parent else None)
    run_id, run_dir = record.id, record.run_dir
    try:
        adapter = merge_adapters(base_path, [info.adapter_dir for info in infos], final_adapter_dir(run_dir),
                                 method, weights, density, export_steps(task))
        write_manifest(adapter)  # as a trained run's final adapter has, so export and continue can check it
    except BaseException:
        registry.mark_finished(run_id, "failed", 1)
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    registry.mark_finished(run_id, "completed", 0,
                           metrics={"merged_from": [info.run_id for info in infos], "merge_method": method})
    return registry.get(run_id) or record
