"""The run directory: one folder per run holding its config, event record, logs, checkpoints and result.

runs/<run_id>/config.json  events.jsonl  logs/  control/  checkpoints/step-…/  final/adapter/
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from studio.engine.paths import resources_dir, runs_dir

if TYPE_CHECKING:  # pydantic stays out of GUI start-up, which lists runs
    from studio.engine.config import TrainConfig

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


def create_run_dir(config: TrainConfig, run_id: str, root: Path | None = None) -> Path:
    run_dir = (root or runs_dir()) / run_id
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    config.save(run_dir / CONFIG_FILE)
    return run_dir


def load_run_config(run_dir: Path) -> TrainConfig:
    from studio.engine.config import TrainConfig

    return TrainConfig.load(run_dir / CONFIG_FILE)


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
