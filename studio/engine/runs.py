"""The run directory: one folder per run holding its config, event record, logs, checkpoints and result.

runs/<run_id>/config.json  events.jsonl  logs/  control/  checkpoints/step-…/  final/adapter/
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.engine.paths import resources_dir, runs_dir

if TYPE_CHECKING:  # pydantic stays out of GUI start-up, which lists runs
    from studio.engine.config import TrainConfig
    from studio.engine.registry import Registry, RunRecord, VersionKind

CONFIG_FILE = "config.json"
EVENTS_FILE = "events.jsonl"


def new_run_id(name: str) -> str:
    """Sortable by time, readable, and unique even for two runs started in the same second."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:32] or "run"
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{slug}-{secrets.token_hex(2)}"


def default_run_name(config: TrainConfig) -> str:
    """A readable default name for a model line: the use case and the data it learned from, said once
    ("chatbot-support-chats"; a profile's own sample data gives "chatbot-sample", not "chatbot-chatbot")."""
    dataset = Path(config.dataset_path).stem if config.dataset_path else "data"
    if config.dataset_path and _is_sample(Path(config.dataset_path)):
        dataset = "sample"
    slug = re.sub(r"[^a-z0-9]+", "-", dataset.lower()).strip("-") or "data"
    profile = config.profile.lower()
    if slug == profile or slug.startswith(f"{profile}-"):
        return slug
    return f"{profile}-{slug}"


def _is_sample(path: Path) -> bool:
    try:
        return path.resolve().parent == (resources_dir() / "samples").resolve()
    except OSError:
        return False


def new_run(
    registry: Registry,
    config: TrainConfig,
    name: str | None = None,
    *,
    parent_id: str | None = None,
    kind: VersionKind = "auto",
    folder: Path | None = None,
) -> RunRecord:
    """The one way a run comes to be, whoever starts it (CLI, wizard, queue, import, merge, worker): its id,
    its folder with config.json (the only copy of its settings: the worker trains from it, every reader reads
    it) and its registry row (version, parent, status queued). The name defaults to the use case and the data.
    `folder` registers a run folder made elsewhere (by hand or a test) under its own folder name."""
    name = name or default_run_name(config)
    run_id = folder.name if folder is not None else new_run_id(name)
    run_dir = create_run_dir(config, run_id, root=folder.parent if folder is not None else None)
    return registry.create_run(run_id, name, config, run_dir, parent_id=parent_id, kind=kind)


def create_run_dir(config: TrainConfig, run_id: str, root: Path | None = None) -> Path:
    """A run folder with its config.json and no registry row: new_run's first half, and what tests and
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
