"""The active version of each model line (runs sharing a name): the one export and the playground start from.

The first finished version becomes active by itself (the registry does that when it is marked completed);
after that the user switches with one click, or an automatic retrain takes over only when its held-out loss
is not worse than the active version's. Every switch is recorded with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.engine.errors import StudioError
from studio.engine.events import now_iso
from studio.engine.runs.folders import final_adapter_dir
from studio.engine.runs.notices import add_notice
from studio.engine.runs.registry import Registry, RunRecord

NOT_ACTIVATED_TAG = "not-activated"
# Held-out losses closer than this are equal: the same weights evaluated twice differ in the last digits.
LOSS_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Activation:
    name: str
    run_id: str | None
    previous_id: str | None
    at: str
    reason: str


@dataclass(frozen=True)
class GateDecision:
    """Whether an automatic retrain takes over, and why, in words a user reads in a notification."""

    activate: bool
    reason: str
    candidate_loss: float | None = None
    active_loss: float | None = None


def active_run(registry: Registry, name: str) -> RunRecord | None:
    with registry.connect() as db:
        row = db.execute("SELECT run_id FROM active_versions WHERE name = ?", (name,)).fetchone()
    return registry.get(row["run_id"]) if row else None


def active_ids(registry: Registry) -> set[str]:
    with registry.connect() as db:
        return {row[0] for row in db.execute("SELECT run_id FROM active_versions")}


def default_run(registry: Registry, ref: str) -> RunRecord:
    """What export and the playground start from: a model line's name means its active version (the latest
    run when none is active); an id or `name@version` means exactly that run."""
    if "@" not in ref:
        active = active_run(registry, ref)
        if active is not None:
            return active
    return registry.find(ref)


def activate(registry: Registry, ref: str, reason: str = "chosen by you") -> RunRecord:
    """Make a finished run the active version of its line (one click in the library, `studio activate`)."""
    record = registry.find(ref)
    if record.status != "completed" or not (final_adapter_dir(record.run_dir) / "adapter_config.json").is_file():
        raise StudioError(
            what=f"{record.name} {record.version} cannot be made the active version.",
            why=f"Only a finished run with a trained adapter can be used (this one is {record.status}).",
            actions=[
                f"Resume it first: `studio resume {record.id}`.",
                "Pick a version that completed: `studio runs` lists them.",
            ],
            code="activation_unavailable",
        )
    _switch(registry, record, reason)
    return record


def activation_history(registry: Registry, name: str) -> list[Activation]:
    with registry.connect() as db:
        rows = db.execute(
            "SELECT name, run_id, previous_id, at, reason FROM activations WHERE name = ? ORDER BY id", (name,)
        ).fetchall()
    return [Activation(**dict(row)) for row in rows]


def judge(candidate: RunRecord, active: RunRecord | None) -> GateDecision:
    """The rule for an automatic retrain: it takes over only when its held-out loss is not worse.

    Both versions are compared on the candidate's own held-out examples when the worker evaluated the active
    adapter on them (`baseline_eval_loss`); otherwise on each one's recorded held-out loss."""
    if candidate.status != "completed":
        return GateDecision(False, f"it did not finish (it is {candidate.status}).")
    if active is None or active.id == candidate.id:
        return GateDecision(True, "there was no active version yet.", _held_out_loss(candidate.metrics))
    compared_with = candidate.config.get("compare_adapter")
    baseline = candidate.metrics.get("baseline_eval_loss")
    same_data = compared_with is not None and baseline is not None
    same_data = same_data and _same_folder(str(compared_with), final_adapter_dir(active.run_dir))
    if same_data:  # both measured by the same code on the same examples once training was over
        new, old = candidate.metrics.get("final_eval_loss"), baseline
    else:
        new, old = _held_out_loss(candidate.metrics), _held_out_loss(active.metrics)
    if new is None:
        return GateDecision(False, "it has no held-out examples, so it cannot be compared with the active one.")
    where = "on the same held-out examples" if same_data else "each on its own held-out examples"
    if old is None:
        return GateDecision(True, "the active version has no held-out loss to beat.", new)
    if new <= old + LOSS_TOLERANCE:
        return GateDecision(True, f"its held-out loss {new:.4f} is not worse than {old:.4f} ({where}).", new, old)
    return GateDecision(False, f"its held-out loss {new:.4f} is worse than {old:.4f} ({where}).", new, old)


def settle_automatic(registry: Registry, run_id: str) -> GateDecision:
    """After an automatic retrain: switch to it when it passes `judge`, else keep it, mark it and say so."""
    candidate = registry.get(run_id)
    assert candidate is not None
    active = active_run(registry, candidate.name)
    decision = judge(candidate, active)
    label = f"{candidate.name} {candidate.version}"
    if decision.activate:
        if active is None or active.id != candidate.id:
            _switch(registry, candidate, f"automatic retrain: {decision.reason}")
        add_notice(registry, "info", f"{label} is now the active version", f"It took over because {decision.reason}",
                   run_id)
    elif candidate.status == "completed":
        registry.add_tag(run_id, NOT_ACTIVATED_TAG)
        registry.add_note(run_id, f"Not made active: {decision.reason}")
        kept = f"{active.name} {active.version}" if active else "the previous version"
        add_notice(
            registry,
            "warning",
            f"{label} was kept but not made active",
            f"{kept} stays active because the new version's {decision.reason} "
            "Compare them in the runs library, or make the new one active by hand if you prefer it.",
            run_id,
        )
    return decision


def _switch(registry: Registry, record: RunRecord, reason: str) -> None:
    with registry.connect() as db:
        row = db.execute("SELECT run_id FROM active_versions WHERE name = ?", (record.name,)).fetchone()
        previous = row["run_id"] if row else None
        if previous == record.id:
            return
        db.execute(
            "INSERT INTO active_versions (name, run_id, since) VALUES (?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET run_id = excluded.run_id, since = excluded.since",
            (record.name, record.id, now_iso()),
        )
        db.execute(
            "INSERT INTO activations (name, run_id, previous_id, at, reason) VALUES (?, ?, ?, ?, ?)",
            (record.name, record.id, previous, now_iso(), reason),
        )
        db.execute("DELETE FROM tags WHERE run_id = ? AND tag = ?", (record.id, NOT_ACTIVATED_TAG))


def _held_out_loss(metrics: dict[str, Any]) -> float | None:
    """The run's loss on its held-out examples after training (the last evaluation when none was scored)."""
    final = metrics.get("final_eval_loss")
    return final if final is not None else metrics.get("eval_loss")


def _same_folder(a: str, b: Path) -> bool:
    return Path(a).expanduser().resolve() == b.expanduser().resolve()
