"""Estimated start and finish of each queued run: the planner's time estimate for each, one after another,
respecting "not before" times. Pure, so the queue view can redraw it every few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from studio.engine.queue.store import QueueEntry, parse_time

if TYPE_CHECKING:
    from studio.engine.config import TrainConfig

# A run with no estimate (its model or data could not be read when queued) is counted as this long.
UNKNOWN_DURATION_S = 30 * 60.0


@dataclass(frozen=True)
class Slot:
    entry: QueueEntry
    start: datetime
    finish: datetime
    estimated: bool  # False when the duration was not known and a default was used


def timeline(entries: list[QueueEntry], now: datetime | None = None) -> list[Slot]:
    """One slot per open entry, in line order. A running entry started at its start time; the next begins
    when the one before is expected to finish (never in the past)."""
    now = now or datetime.now(timezone.utc)
    cursor = now
    slots: list[Slot] = []
    for entry in entries:
        if entry.state not in ("running", "waiting"):
            continue
        duration = entry.estimate_s if entry.estimate_s is not None else UNKNOWN_DURATION_S
        if entry.state == "running" and entry.started_at:
            start = parse_time(entry.started_at)
            finish = max(now, start + timedelta(seconds=duration))
        else:
            start = max(cursor, entry.not_before) if entry.not_before else cursor
            finish = start + timedelta(seconds=duration)
        slots.append(Slot(entry, start, finish, entry.estimate_s is not None))
        cursor = finish
    return slots


def estimate_duration(config: TrainConfig) -> float | None:
    """The planner's expected training time for a config on this machine, for the queue's timeline; None when
    the model or the data cannot be read now (the worker will say why when the run starts)."""
    from studio.engine.datasets import DatasetOptions, validate_file
    from studio.engine.errors import StudioError
    from studio.engine.hardware import probe
    from studio.engine.models.facts import read_model_facts
    from studio.engine.planner import estimate, token_stats

    try:
        facts = read_model_facts(config.base_model)
        stats = None
        if config.dataset_path and Path(config.dataset_path).is_file():
            options = DatasetOptions(
                mapping=config.column_mapping,
                tokenizer_path=facts.path,
                max_length=config.max_length,
                profile=config.profile,
            )
            report = validate_file(config.dataset_path, options)
            stats = token_stats(report)
        return estimate(config, probe(), facts, stats).total_time_s.expected
    except (StudioError, OSError, ValueError):
        return None
