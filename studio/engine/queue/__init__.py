"""Queued, scheduled and automatic training runs (see store, runner, schedules)."""

from studio.engine.queue.runner import EntryResult, QueueRunner, runner_busy, stop_runner
from studio.engine.queue.schedules import Schedule, Schedules
from studio.engine.queue.store import QueueEntry, RunQueue
from studio.engine.queue.timeline import Slot, estimate_duration, timeline

__all__ = [
    "EntryResult",
    "QueueEntry",
    "QueueRunner",
    "RunQueue",
    "Schedule",
    "Schedules",
    "Slot",
    "estimate_duration",
    "runner_busy",
    "stop_runner",
    "timeline",
]
