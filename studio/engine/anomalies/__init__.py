"""Anomaly detection and recovery for training runs: pure functions over the metrics stream.

The worker feeds an AnomalyMonitor, asks `decide` what to do about each Finding, carries the decision
out and reports it as events; `summarize_run` turns the finished event stream into a verdict a person can
read. Nothing here imports torch or Qt. See docs/anomalies.md.
"""

from studio.engine.anomalies.guard import AnomalyGuard
from studio.engine.anomalies.monitor import AnomalyMonitor
from studio.engine.anomalies.policies import (
    ACTION_LABELS,
    Decision,
    RecoveryAction,
    RecoveryState,
    decide,
    oom_exhausted_error,
    oom_finding,
    plan_oom_retry,
    resolve_choice,
)
from studio.engine.anomalies.records import EvalMetrics, Finding, StepMetrics
from studio.engine.anomalies.reporting import recovery_event_fields, to_event_fields
from studio.engine.anomalies.summary import RunSummary, summarize_file, summarize_run
from studio.engine.anomalies.thresholds import Thresholds

__all__ = [
    "ACTION_LABELS",
    "AnomalyGuard",
    "AnomalyMonitor",
    "Decision",
    "EvalMetrics",
    "Finding",
    "RecoveryAction",
    "RecoveryState",
    "RunSummary",
    "StepMetrics",
    "Thresholds",
    "decide",
    "oom_exhausted_error",
    "oom_finding",
    "plan_oom_retry",
    "recovery_event_fields",
    "resolve_choice",
    "summarize_file",
    "summarize_run",
    "to_event_fields",
]
