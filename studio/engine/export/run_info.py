"""What an export needs to know about a run: where it is, its adapter, its base model and its results.

Read from the run directory itself (config.json, events.jsonl, final/adapter or, for a run stopped early,
its last verified checkpoint), so an export works for any run folder, including one copied from another
machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.engine.config import TrainConfig
from studio.engine.events import Completed, Eval, EventParseError, Started, parse_event
from studio.engine.export.adapter import check_adapter
from studio.engine.runs.folders import CONFIG_FILE, events_file, final_adapter_dir, load_run_config
from studio.engine.training.final_adapter import usable_adapter


@dataclass(frozen=True)
class RunInfo:
    run_dir: Path
    run_id: str
    adapter_dir: Path
    base_model: str
    config: TrainConfig | None
    train_examples: int | None = None
    eval_examples: int | None = None
    best_eval_loss: float | None = None
    final_metrics: dict[str, Any] = field(default_factory=dict)
    checkpoint_step: int | None = None  # set when the run stopped early and its last checkpoint is used

    @property
    def profile_id(self) -> str | None:
        return self.config.profile if self.config else None


def find_run(ref: str | Path) -> Path:
    """A run directory from a run folder path, or from a run id or name known to the registry."""
    text = str(ref).strip()
    folder = Path(text).expanduser()
    if text and folder.is_dir() and ((folder / CONFIG_FILE).is_file() or final_adapter_dir(folder).is_dir()):
        return folder.resolve()
    from studio.engine.runs.active import default_run
    from studio.engine.runs.registry import Registry

    record = default_run(Registry(), text)  # a name means its active version; run_not_found otherwise
    return record.run_dir


def load_run_info(run_dir: Path) -> RunInfo:
    adapter = usable_adapter(run_dir)  # a damaged one is refused before anything is built from it
    adapter_dir = adapter.path
    adapter_config = check_adapter(adapter_dir)
    config = load_run_config(run_dir) if (run_dir / CONFIG_FILE).is_file() else None
    base = config.base_model if config else str(adapter_config.get("base_model_name_or_path") or "")
    started, evals, completed = _read_events(events_file(run_dir))
    losses = [e.eval_loss for e in evals if math.isfinite(e.eval_loss)]
    return RunInfo(
        run_dir=run_dir,
        run_id=run_dir.name,
        adapter_dir=adapter_dir,
        base_model=base,
        config=config,
        train_examples=started.train_examples if started else None,
        eval_examples=started.eval_examples if started else None,
        best_eval_loss=min(losses) if losses else None,
        final_metrics=dict(completed.metrics) if completed else {},
        checkpoint_step=adapter.step,
    )


def _read_events(path: Path) -> tuple[Started | None, list[Eval], Completed | None]:
    """The last start, every evaluation and the completion; unreadable lines are skipped, not fatal."""
    started: Started | None = None
    completed: Completed | None = None
    evals: list[Eval] = []
    if not path.is_file():
        return started, evals, completed
    with path.open(encoding="utf-8", errors="replace") as stream:
        for line in stream:
            try:
                event = parse_event(line)
            except EventParseError:
                continue
            if isinstance(event, Started):
                started = event
            elif isinstance(event, Eval):
                evals.append(event)
            elif isinstance(event, Completed):
                completed = event
    return started, evals, completed
