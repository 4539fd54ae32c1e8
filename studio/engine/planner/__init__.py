"""The planner: smart defaults with a reason for each, and estimates of memory, time, cost, carbon and disk.

`plan` and `estimate` are pure functions over plain data (hardware profile, model facts, profile, dataset
statistics); nothing there loads a model or touches the GPU, so the wizard can re-estimate on every
keystroke. `plan_for` gathers that data for a model, a use case and a dataset: every caller plans through it.
"""

from studio.engine.planner.disk import disk_needed_bytes
from studio.engine.planner.estimate import estimate
from studio.engine.planner.plan import plan
from studio.engine.planner.types import DatasetStats, Estimates, Interval, Plan
from studio.engine.planner.workflow import Planned, measure_dataset, plan_for, token_stats

__all__ = [
    "DatasetStats",
    "Estimates",
    "Interval",
    "Plan",
    "Planned",
    "disk_needed_bytes",
    "estimate",
    "measure_dataset",
    "plan",
    "plan_for",
    "token_stats",
]
