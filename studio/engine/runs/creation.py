"""Creating a run: the one place a run comes to be, whoever starts it (CLI, wizard, dashboard, queue, import,
merge, worker). It names the run, writes its folder with config.json and adds its registry row."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from studio.engine.paths import resources_dir
from studio.engine.runs.folders import create_run_dir
from studio.engine.runs.registry import Registry, RunRecord, VersionKind

if TYPE_CHECKING:
    from studio.engine.config import TrainConfig


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
