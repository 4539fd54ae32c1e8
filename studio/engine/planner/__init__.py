"""The planner: smart defaults with a reason for each, and estimates of memory, time, cost, carbon and disk.

Pure functions over plain data (hardware profile, model facts, profile, dataset statistics); nothing here
loads a model or touches the GPU, so the wizard can re-plan on every keystroke.
"""

from studio.engine.planner.disk import disk_needed_bytes
from studio.engine.planner.estimate import estimate
from studio.engine.planner.plan import plan
from studio.engine.planner.types import DatasetStats, Estimates, Interval, Plan

__all__ = ["DatasetStats", "Estimates", "Interval", "Plan", "disk_needed_bytes", "estimate", "plan"]
