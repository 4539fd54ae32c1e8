"""Findings and decisions as the fields of `anomaly` and `recovery` events (studio.engine.events).

The worker builds events with `Anomaly(run_id=..., **to_event_fields(finding, decision, mode))` and
`Recovery(run_id=..., **recovery_event_fields(action, step))`, so the GUI's banner, the dashboard markers
and the post-run summary all read the same plain-language message, evidence and actions.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from studio.engine.anomalies.policies import ACTION_LABELS, Decision, Mode, RecoveryAction
from studio.engine.anomalies.records import Finding, json_safe


def to_event_fields(finding: Finding, decision: Decision, mode: Mode = "auto") -> dict[str, Any]:
    """Keyword arguments for studio.engine.events.Anomaly (all but run_id/seq/ts).

    `actions` holds what was done (auto) or the keys offered to the user (ask); `extra` carries the labels
    for the GUI's buttons, the proposed fix, advice and whether a checkpoint is being taken.
    """
    done = [action.kind for action in decision.actions]
    return {
        "anomaly": finding.kind,
        "severity": finding.severity,
        "message": finding.message,
        "step": finding.step,
        "evidence": dict(finding.evidence),
        "actions": list(decision.offer) if mode == "ask" else done,
        "extra": json_safe({
            "mode": mode,
            "offer_labels": {key: ACTION_LABELS[key] for key in decision.offer},
            "proposed": [asdict(action) for action in decision.proposed],
            "advice": list(decision.advice),
            "checkpoint_now": decision.checkpoint_now,
        }),
    }


def recovery_event_fields(action: RecoveryAction, step: int) -> dict[str, Any]:
    """Keyword arguments for studio.engine.events.Recovery: old_* params go to `before`, others to `after`."""
    before = {key[4:]: value for key, value in action.params.items() if key.startswith("old_")}
    after = {key.removeprefix("new_"): value for key, value in action.params.items()
             if not key.startswith("old_")}
    return {
        "action": action.kind,
        "message": action.message,
        "step": step,
        "before": json_safe(before),
        "after": json_safe(after),
    }
