"""Recovery policies: what to do about a finding, as pure decisions the worker carries out.

`decide` never changes anything itself. In "auto" mode the worker applies `Decision.actions` and then
`RecoveryState.after(actions)`; in "ask" mode it shows `Decision.offer` (keys of ACTION_LABELS), waits for
the user's `anomaly_action` control command and turns the answer into actions with `resolve_choice`; in
"off" mode it only reports. A rollback always goes to the last *good* checkpoint: a checkpoint written at
the moment of a loss spike, divergence or NaN would hold damaged weights, so `checkpoint_now` is only set
for findings that leave the model sound (and "anomaly" checkpoints are never rollback targets).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from studio.engine.anomalies.records import (
    ACCURACY_AT_CHANCE,
    DIVERGENCE,
    GRAD_EXPLOSION,
    KL_DRIFT,
    LOSS_SPIKE,
    MARGIN_COLLAPSE,
    MEMORY_PRESSURE,
    NON_FINITE,
    OUT_OF_MEMORY,
    OVERFITTING,
    PLATEAU,
    THROUGHPUT_COLLAPSE,
    Finding,
    fmt,
)
from studio.engine.anomalies.thresholds import Thresholds
from studio.engine.errors import ExitCode, StudioError

Mode = Literal["auto", "ask", "off"]
ActionKind = Literal[
    "rollback_and_halve_lr",
    "tighten_grad_clip",
    "reduce_batch_for_oom",
    "early_stop_restore_best",
    "checkpoint_now",
    "lower_lr",
    "stop_training",
    "none",
]

ROLLBACK_KINDS = frozenset({NON_FINITE, LOSS_SPIKE, DIVERGENCE})
"""Findings after which the current weights are suspect: roll back, never checkpoint them."""
NO_CHECKPOINT_KINDS = ROLLBACK_KINDS | {OUT_OF_MEMORY, MARGIN_COLLAPSE, KL_DRIFT}
"""Findings whose weights are not worth a checkpoint: damaged, or worse than earlier ones (a collapsed margin,
a model drifted from its reference)."""

ACTION_LABELS: dict[str, str] = {
    "accept": "Apply the fix",
    "rollback": "Go back to the last good checkpoint",
    "lower_lr": "Lower the learning rate",
    "stop": "Stop training",
    "ignore": "Keep going",
}
"""The one-click choices the GUI shows in "ask" mode, keyed as sent back in `anomaly_action`."""


@dataclass(frozen=True)
class RecoveryAction:
    """One concrete change the worker makes; params hold before/after values (new lr, new clip, ...)."""

    kind: ActionKind
    params: dict[str, Any] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True)
class RecoveryState:
    """What recovery has done so far in this run, so policies escalate instead of looping."""

    lr: float
    max_grad_norm: float | None = None  # None: clipping is off
    micro_batch: int = 1
    accumulation: int = 1
    rollbacks: int = 0
    clip_tightenings: int = 0
    oom_retries: int = 0
    seen_kinds: frozenset[str] = frozenset()

    def after(self, actions: list[RecoveryAction]) -> RecoveryState:
        """The state once the worker has applied these actions."""
        state = self
        for action in actions:
            p = action.params
            if action.kind == "rollback_and_halve_lr":
                state = replace(state, lr=p["new_lr"], rollbacks=state.rollbacks + 1)
            elif action.kind == "lower_lr":
                state = replace(state, lr=p["new_lr"])
            elif action.kind == "tighten_grad_clip":
                state = replace(state, max_grad_norm=p["new_max_grad_norm"],
                                clip_tightenings=state.clip_tightenings + 1)
            elif action.kind == "reduce_batch_for_oom":
                state = replace(state, micro_batch=p["new_micro_batch"], accumulation=p["new_accumulation"],
                                oom_retries=p["attempt"])
        return state

    def seen(self, kind: str) -> RecoveryState:
        return replace(self, seen_kinds=self.seen_kinds | {kind})


@dataclass(frozen=True)
class Decision:
    actions: list[RecoveryAction]
    """What the worker does now (empty in "ask" and "off" modes)."""
    offer: list[str]
    """Keys of ACTION_LABELS to offer the user ("ask" mode only)."""
    checkpoint_now: bool
    """Save a checkpoint now (reason "anomaly"): first sighting of a kind that leaves the model sound."""
    proposed: list[RecoveryAction] = field(default_factory=list)
    """What "auto" mode would do: shown in "ask" mode as the fix behind "Apply the fix"."""
    advice: list[str] = field(default_factory=list)
    """Plain-language hints for the user (causes, things to try)."""
    step: int = 0
    """The step of the finding this decision answers."""


def plan_oom_retry(micro_batch: int, accumulation: int, attempt: int,
                   max_retries: int = Thresholds.max_oom_retries) -> tuple[int, int] | None:
    """The next (micro-batch, accumulation) after an out-of-memory error, or None when out of options.

    The micro-batch is halved (or cut to its largest divisor below half, so the product stays exact) and
    the accumulation grows by the same factor, so the effective batch and thus the training recipe are
    unchanged. `attempt` is the 1-based number of the retry being planned.
    """
    if attempt < 1 or attempt > max_retries or micro_batch <= 1 or accumulation < 1:
        return None
    new_micro = max(d for d in range(1, micro_batch // 2 + 1) if micro_batch % d == 0)
    return new_micro, accumulation * (micro_batch // new_micro)


def oom_exhausted_error(micro_batch: int, accumulation: int, attempts: int) -> StudioError:
    """The exit-3 error once retries are used up."""
    return StudioError(
        what="Training ran out of memory, even with a smaller batch.",
        why=(f"Studio retried {attempts} time(s), down to {micro_batch} example(s) at once "
             f"(accumulating {accumulation}), and the model still did not fit."),
        actions=[
            "Lower the longest example length (max length) in the settings.",
            "Turn on gradient checkpointing, or 4-bit loading (QLoRA) on an NVIDIA GPU.",
            "Choose a smaller model, or close other programs that use the GPU or memory.",
        ],
        code="out_of_memory",
        exit_code=ExitCode.OUT_OF_MEMORY,
    )


def oom_finding(step: int, micro_batch: int, accumulation: int, error: str = "") -> Finding:
    """An out-of-memory error seen by the worker, as a finding so it flows through `decide` and events."""
    return Finding(
        kind=OUT_OF_MEMORY,
        severity="critical",
        message=(f"Training ran out of memory at step {step} with {micro_batch} example(s) at once. "
                 "Studio can retry with smaller pieces while keeping the same effective batch."),
        evidence={"micro_batch": micro_batch, "accumulation": accumulation, "error": error[:300],
                  "step": step},
        step=step,
    )


def _rollback(state: RecoveryState, t: Thresholds, step: int) -> RecoveryAction:
    new_lr = state.lr * t.lr_factor
    return RecoveryAction(
        "rollback_and_halve_lr",
        {"old_lr": state.lr, "new_lr": new_lr, "to": "last_good_checkpoint", "rollback": state.rollbacks + 1,
         "step": step},
        f"Went back to the last good checkpoint and lowered the learning rate from {fmt(state.lr)} "
        f"to {fmt(new_lr)}.",
    )


def _stop(state: RecoveryState, reason: str) -> RecoveryAction:
    return RecoveryAction("stop_training", {"rollbacks": state.rollbacks, "reason": reason},
                          f"Stopped training: {reason} The best checkpoint so far is kept.")


def _tighten_clip(state: RecoveryState, t: Thresholds) -> RecoveryAction:
    old = state.max_grad_norm
    new = t.default_clip if old is None else max(t.min_clip, old * t.clip_factor)
    verb = "Switched on" if old is None else "Tightened"
    return RecoveryAction("tighten_grad_clip", {"old_max_grad_norm": old, "new_max_grad_norm": new},
                          f"{verb} gradient clipping: updates are now capped at size {fmt(new)}.")


def _lower_lr(state: RecoveryState, t: Thresholds) -> RecoveryAction:
    new_lr = state.lr * t.lr_factor
    return RecoveryAction("lower_lr", {"old_lr": state.lr, "new_lr": new_lr},
                          f"Lowered the learning rate from {fmt(state.lr)} to {fmt(new_lr)}.")


def _rollback_or_stop(state: RecoveryState, t: Thresholds, step: int) -> list[RecoveryAction]:
    if state.rollbacks >= t.max_rollbacks:
        return [_stop(state, f"it went wrong again after {state.rollbacks} rollbacks with a lower learning rate.")]
    return [_rollback(state, t, step)]


def _preference_proposal(
    finding: Finding, state: RecoveryState, t: Thresholds
) -> tuple[list[RecoveryAction], list[str]]:
    """The rules of preference runs (DPO, ORPO, KTO): each escalates when the same trouble comes back."""
    kind, ev = finding.kind, finding.evidence
    again = kind in state.seen_kinds
    if kind == MARGIN_COLLAPSE:
        advice = ["A lower learning rate usually keeps the margin growing.",
                  "If it collapses again, the best model is the one from before the fall: stop and use it."]
        if ev.get("pattern") == "falling" and not again:
            return [_lower_lr(state, t)], advice  # still above half its peak: slow down, keep going
        return _rollback_or_stop(state, t, finding.step), advice
    if kind == KL_DRIFT:
        beta = ev.get("beta")
        raise_beta = (f"Train again with a higher beta (now {fmt(beta)}, try {fmt(beta * 2)}): it keeps the "
                      "model closer to where it started." if isinstance(beta, float | int)
                      else "Train again with a higher beta: it keeps the model closer to where it started.")
        if not again:
            return [_lower_lr(state, t)], [raise_beta]
        return _rollback_or_stop(state, t, finding.step), [raise_beta]
    # ACCURACY_AT_CHANCE: nothing Studio can change on its own tells a too-low learning rate from a bad beta
    # or data, so the first time it advises; if the next whole window is a coin flip too, it stops the run.
    advice = ["Check that the chosen answers are clearly better than the rejected ones, and that the two differ.",
              f"Try a higher learning rate (now {fmt(state.lr)}) if the margin stays near zero.",
              "Try a different beta (0.05 to 0.5 is the usual range; lower lets the model move further)."]
    if not again:
        return [], advice
    return [_stop(state, "the model still picked the better answer no more often than a coin flip.")], advice


def _proposal(
    finding: Finding, state: RecoveryState, t: Thresholds
) -> tuple[list[RecoveryAction], list[str]]:
    """What automatic mode does for this finding, and the advice to show with it."""
    kind, ev = finding.kind, finding.evidence
    if kind in {MARGIN_COLLAPSE, KL_DRIFT, ACCURACY_AT_CHANCE}:
        return _preference_proposal(finding, state, t)
    needs_rollback = kind in ROLLBACK_KINDS or (kind == GRAD_EXPLOSION and state.clip_tightenings >= 1)
    if kind == GRAD_EXPLOSION and not needs_rollback:
        return [_tighten_clip(state, t)], []
    if needs_rollback:
        if state.rollbacks >= t.max_rollbacks:
            reason = f"it went wrong again after {state.rollbacks} rollbacks with a lower learning rate."
            return [_stop(state, reason)], [
                "The data may contain broken examples, or this model may not suit it."]
        return [_rollback(state, t, finding.step)], []
    if kind == OUT_OF_MEMORY:
        plan = plan_oom_retry(state.micro_batch, state.accumulation, state.oom_retries + 1, t.max_oom_retries)
        if plan is None:
            return [_stop(state, "it ran out of memory even with the smallest batch Studio tried.")], \
                oom_exhausted_error(state.micro_batch, state.accumulation, state.oom_retries).actions
        micro, accum = plan
        return [RecoveryAction(
            "reduce_batch_for_oom",
            {"old_micro_batch": state.micro_batch, "old_accumulation": state.accumulation,
             "new_micro_batch": micro, "new_accumulation": accum, "attempt": state.oom_retries + 1,
             "effective_batch": micro * accum},
            f"Freed memory and retried with {micro} example(s) at once and {accum} accumulation steps "
            f"(same effective batch of {micro * accum}).",
        )], []
    if kind == OVERFITTING:
        best_step, best_loss = ev.get("best_step"), ev.get("best_eval_loss")
        return [RecoveryAction(
            "early_stop_restore_best", {"best_step": best_step, "best_eval_loss": best_loss},
            f"Stopped early and restored the best model, from step {best_step}.",
        )], []
    if kind == MEMORY_PRESSURE:
        if ev.get("resource") == "gpu":
            return [], ["Use a smaller batch (Studio keeps the effective batch by accumulating more).",
                        "Shorten the longest example length."]
        return [], ["Close other programs to free memory.", "Shorten the longest example length."]
    if kind == THROUGHPUT_COLLAPSE:
        return [], ["Check that the computer is not overheating (vents free, plugged in).",
                    "Close other programs that use the processor, GPU or memory."]
    if kind == PLATEAU:
        return [], ["Stopping now loses little.", "More varied data helps more than more steps."]
    return [], []


def _offer(proposed: list[RecoveryAction]) -> list[str]:
    if not proposed:
        return ["ignore", "stop"]
    if proposed[0].kind in {"rollback_and_halve_lr", "tighten_grad_clip", "lower_lr"}:
        return ["accept", "rollback", "lower_lr", "stop", "ignore"]
    if proposed[0].kind == "stop_training":
        return ["stop", "ignore"]
    return ["accept", "stop", "ignore"]


def decide(finding: Finding, mode: Mode, state: RecoveryState,
           thresholds: Thresholds | None = None) -> Decision:
    t = thresholds or Thresholds()
    proposed, advice = _proposal(finding, state, t)
    if mode == "off":
        return Decision(actions=[], offer=[], checkpoint_now=False, proposed=proposed, advice=advice,
                        step=finding.step)
    first_time = finding.kind not in state.seen_kinds
    checkpoint = first_time and finding.kind not in NO_CHECKPOINT_KINDS
    if mode == "ask":
        return Decision(actions=[], offer=_offer(proposed), checkpoint_now=checkpoint, proposed=proposed,
                        advice=advice, step=finding.step)
    return Decision(actions=proposed, offer=[], checkpoint_now=checkpoint, proposed=proposed, advice=advice,
                    step=finding.step)


def resolve_choice(choice: str, decision: Decision, state: RecoveryState,
                   thresholds: Thresholds | None = None) -> list[RecoveryAction]:
    """The actions for the user's answer in "ask" mode (a key of ACTION_LABELS; unknown keys mean ignore)."""
    t = thresholds or Thresholds()
    if choice == "accept":
        return list(decision.proposed)
    if choice == "rollback":
        return [_rollback(state, t, decision.step)]
    if choice == "lower_lr":
        return [_lower_lr(state, t)]
    if choice == "stop":
        return [_stop(state, "you asked to stop.")]
    return [RecoveryAction("none", {}, "Kept going without changes, as you asked.")]
