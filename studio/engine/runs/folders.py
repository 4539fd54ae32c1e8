"""The run directory: one folder per run holding its config, event record, logs, checkpoints and result.

runs/<run_id>/config.json  events.jsonl  logs/  control/  checkpoints/step-…/  final/adapter/
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.engine.paths import runs_dir

if TYPE_CHECKING:  # pydantic stays out of GUI start-up, which lists runs
    from studio.engine.config import TrainConfig

CONFIG_FILE = "config.json"
EVENTS_FILE = "events.jsonl"


def create_run_dir(config: TrainConfig, run_id: str, root: Path | None = None) -> Path:
    """A run folder with its config.json and no registry row: runs.creation.new_run's first half, and what tests and
    benchmarks hand straight to the worker."""
    run_dir = (root or runs_dir()) / run_id
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    config.save(run_dir / CONFIG_FILE)
    return run_dir


def load_run_config(run_dir: Path) -> TrainConfig:
    """The run's settings, validated, for training from them (a missing or broken file is a plain error)."""
    from studio.engine.config import TrainConfig

    return TrainConfig.load(run_dir / CONFIG_FILE)


def run_settings(run_dir: Path) -> dict[str, Any]:
    """The run's settings as plain data, for showing and comparing: the one reader of config.json behind
    RunRecord.config (the registry keeps no copy). Without pydantic, so listing runs stays light; a run whose
    folder is gone, or whose file cannot be read, has none to show ({})."""
    try:
        data = json.loads((run_dir / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def events_file(run_dir: Path) -> Path:
    return run_dir / EVENTS_FILE


def final_adapter_dir(run_dir: Path) -> Path:
    return run_dir / "final" / "adapter"


def trainer_staging_dir(run_dir: Path) -> Path:
    """Where the Trainer writes checkpoints before Studio seals and moves them into checkpoints/."""
    return run_dir / ".staging"


def logs_dir(run_dir: Path) -> Path:
    path = run_dir / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path
