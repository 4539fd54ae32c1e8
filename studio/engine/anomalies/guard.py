"""AnomalyGuard: the one object a training loop holds to get detection, decisions and events together.

It owns the monitor and the RecoveryState, emits an `anomaly` event for every finding, and queues the
actions the loop must carry out (`take_pending`). The loop reports each action back with `applied`, which
updates the state and emits the `recovery` event, so the record only ever claims what really happened.
In "ask" mode a finding with a fix waits in `awaiting` until the user's choice arrives through `answer`.
The guard knows nothing about torch or the Trainer: callback.py adapts it to transformers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from studio.engine.anomalies.monitor import AnomalyMonitor
from studio.engine.anomalies.policies import (
    Decision,
    Mode,
    RecoveryAction,
    RecoveryState,
    decide,
    oom_finding,
    resolve_choice,
)
from studio.engine.anomalies.records import EvalMetrics, Finding, StepMetrics
from studio.engine.anomalies.reporting import recovery_event_fields, to_event_fields
from studio.engine.events import Anomaly, Event, Recovery


class AnomalyGuard:
    def __init__(self, run_id: str, emit: Callable[[Event], object], mode: Mode, state: RecoveryState,
                 monitor: AnomalyMonitor | None = None) -> None:
        self.run_id = run_id
        self.emit = emit
        self.mode = mode
        self.state = state
        self.monitor = monitor or AnomalyMonitor()
        self.pending: list[RecoveryAction] = []
        self.awaiting: list[Decision] = []
        self.checkpoint_requested = False

    def observe_step(self, metrics: StepMetrics) -> list[Decision]:
        return [self._handle(f) for f in self.monitor.observe_step(metrics)]

    def observe_eval(self, metrics: EvalMetrics) -> list[Decision]:
        return [self._handle(f) for f in self.monitor.observe_eval(metrics)]

    def observe_oom(self, step: int, error: str = "") -> Decision:
        """An out-of-memory error caught by the loop; in auto mode the retry plan lands in `pending`."""
        return self._handle(oom_finding(step, self.state.micro_batch, self.state.accumulation, error))

    def answer(self, choice: str) -> list[RecoveryAction]:
        """The user's answer ("ask" mode) to the oldest open question; its actions join `pending`."""
        if not self.awaiting:
            return []
        decision = self.awaiting.pop(0)
        actions = resolve_choice(choice, decision, self.state, self.monitor.thresholds)
        for action in actions:
            if action.kind == "none":
                self.applied(action, decision.step)
            else:
                self._queue(action)
        return actions

    def take_pending(self) -> list[RecoveryAction]:
        """Hand the queued actions to the loop, which must call `applied` for each one it carries out."""
        actions, self.pending = self.pending, []
        return actions

    def take_checkpoint_request(self) -> bool:
        """True once after a finding asked for a checkpoint (the loop saves it with reason "anomaly")."""
        requested, self.checkpoint_requested = self.checkpoint_requested, False
        return requested

    def applied(self, action: RecoveryAction, step: int, **details: Any) -> Event:
        """Record a carried-out action (details such as the checkpoint restored go into `after`)."""
        self.state = self.state.after([action])
        fields = recovery_event_fields(action, step)
        fields["after"] = {**fields["after"], **details}
        event = Recovery(run_id=self.run_id, **fields)
        self.emit(event)
        return event

    def _handle(self, finding: Finding) -> Decision:
        decision = decide(finding, self.mode, self.state, self.monitor.thresholds)
        self.state = self.state.seen(finding.kind)
        self.emit(Anomaly(run_id=self.run_id, **to_event_fields(finding, decision, self.mode)))
        self.checkpoint_requested = self.checkpoint_requested or decision.checkpoint_now
        if self.mode == "ask" and decision.proposed:
            self.awaiting.append(decision)
        for action in decision.actions:
            self._queue(action)
        return decision

    def _queue(self, action: RecoveryAction) -> None:
        """One action of a kind at a time: a spike and a divergence at the same step mean one rollback."""
        if all(queued.kind != action.kind for queued in self.pending):
            self.pending.append(action)
