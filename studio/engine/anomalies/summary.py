"""The post-run summary: what happened, what was done, and whether the final model can be trusted.

Built only from the event stream, so it works for a live run, a finished one and any events.jsonl on disk
(a malformed line there is skipped, as every reader of the stream does).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from studio.engine.anomalies.policies import ROLLBACK_KINDS
from studio.engine.anomalies.records import KL_DRIFT, MARGIN_COLLAPSE, OUT_OF_MEMORY, fmt
from studio.engine.events import (
    Anomaly,
    Completed,
    Error,
    Eval,
    Event,
    EventParseError,
    Progress,
    Recovery,
    Stopped,
    parse_event,
)

PHRASES: dict[str, str] = {
    "nan": "hit invalid numbers (NaN)",
    "loss_spike": "had a loss spike",
    "divergence": "diverged",
    "grad_explosion": "had exploding gradients",
    "overfitting": "began to overfit",
    "out_of_memory": "ran out of memory",
    "memory_pressure": "ran low on memory",
    "throughput_collapse": "slowed down sharply",
    "plateau": "stopped improving",
    "margin_collapse": "lost the preference it had learned (collapsing reward margin)",
    "accuracy_at_chance": "did not learn which answer is better (reward accuracy at chance)",
    "kl_drift": "drifted far from its starting model",
}
NEEDS_RECOVERY = ROLLBACK_KINDS | {OUT_OF_MEMORY, MARGIN_COLLAPSE, KL_DRIFT}
"""Anomalies after which the model (or the run) is unusable unless a recovery followed."""
WORSE_THAN_BEST = 0.10
"""A final eval loss this much above the best one means the final model is not the one to use."""


@dataclass(frozen=True)
class RunSummary:
    headline: str
    trustworthy: bool
    details: list[str] = field(default_factory=list)
    final_eval_loss: float | None = None
    best_eval_loss: float | None = None
    best_step: int | None = None
    anomalies: int = 0
    recoveries: int = 0


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _problems(counts: Counter[str]) -> str:
    parts = [f"{PHRASES.get(kind, kind.replace('_', ' '))}{'' if n == 1 else ' ' + _times(n)}"
             for kind, n in counts.items()]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def summarize_run(events: Iterable[Event]) -> RunSummary:
    evals: list[Eval] = []
    anomalies: list[Anomaly] = []
    recoveries: list[Recovery] = []
    unresolved: list[Anomaly] = []
    end: Event | None = None
    last_step = 0
    for event in events:
        if isinstance(event, Progress):
            last_step = max(last_step, event.step)
        elif isinstance(event, Eval):
            evals.append(event)
        elif isinstance(event, Anomaly):
            anomalies.append(event)
            if event.anomaly in NEEDS_RECOVERY:
                unresolved.append(event)
        elif isinstance(event, Recovery) and event.action != "none":
            recoveries.append(event)
            if event.action != "stop_training":
                unresolved.clear()
        elif isinstance(event, Completed | Stopped | Error):
            end = event

    finite_evals = [e for e in evals if isinstance(e.eval_loss, int | float) and math.isfinite(e.eval_loss)]
    best = min(finite_evals, key=lambda e: e.eval_loss) if finite_evals else None
    final_eval = evals[-1].eval_loss if evals else None
    restored = any(r.action == "early_stop_restore_best" for r in recoveries)
    gave_up = any(r.action == "stop_training" for r in recoveries)

    details = [f"Step {a.step}: {a.message}" for a in anomalies]
    details += [f"Step {r.step}: {r.message}" for r in recoveries]
    trust = True
    if isinstance(end, Error):
        trust = False
        outcome = f"Training failed: {end.message.rstrip('.')}"
    elif isinstance(end, Stopped) and not restored:
        trust = False
        outcome = f"Training was stopped at step {end.step or last_step} before the end"
        details.append("The last checkpoint can be used, but the model did not finish training.")
    elif end is None:
        trust = False
        outcome = f"Training did not finish (last step seen: {last_step})"
        details.append("The run was interrupted; it can be resumed from its last good checkpoint.")
    else:
        outcome = "Training completed normally"

    serious = Counter(a.anomaly for a in anomalies if a.severity != "info")
    if serious and not isinstance(end, Error):
        outcome = f"Training {_problems(serious)}"
        if unresolved or gave_up:
            outcome += " and did not recover"
        elif restored:
            outcome += " and was stopped early with the best model restored"
        elif recoveries:
            outcome += " and recovered"
        if isinstance(end, Stopped) and not restored:
            outcome += f"; it was stopped at step {end.step or last_step}"
    if unresolved:
        trust = False
        details.append(f"The problem at step {unresolved[-1].step} was not fixed, so the model after it is "
                       "not reliable.")
    if gave_up:
        trust = False

    model_eval = best.eval_loss if restored and best else final_eval
    if final_eval is None:
        tail = "no check on held-out data was run"
        details.append("Without a held-out check, the model's quality is unmeasured.")
    elif not (isinstance(final_eval, int | float) and math.isfinite(final_eval)):
        trust = False
        tail = "the final held-out loss is not a valid number"
    else:
        assert best is not None and model_eval is not None
        tail = f"final eval loss {fmt(final_eval)}, best at step {best.step}"
        if model_eval > best.eval_loss * (1 + WORSE_THAN_BEST):
            trust = False
            details.append(f"The final model does worse on held-out data ({fmt(model_eval)}) than the one at "
                           f"step {best.step} ({fmt(best.eval_loss)}); use that checkpoint instead.")
    return RunSummary(
        headline=f"{outcome}; {tail}.",
        trustworthy=trust,
        details=details,
        final_eval_loss=final_eval,
        best_eval_loss=best.eval_loss if best else None,
        best_step=best.step if best else None,
        anomalies=len(anomalies),
        recoveries=len(recoveries),
    )


def read_events(path: Path) -> list[Event]:
    """The valid events of an events.jsonl, skipping malformed lines (a crash can cut the last one)."""
    events: list[Event] = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                events.append(parse_event(line))
            except EventParseError:
                continue
    return events


def summarize_file(path: str | Path) -> RunSummary:
    return summarize_run(read_events(Path(path)))
