"""The worker's event protocol: frozen, versioned records with one writer and one parser.

Each event is one JSON object per line with `event`, `v`, `ts` (ISO 8601 UTC), `run_id` and `seq`.
Unknown fields are kept in `extra` so an older GUI can read a newer worker's stream; an unknown event
kind or a malformed line raises EventParseError, which readers log and skip.
See docs/events.md for the full protocol.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from typing import Any, ClassVar

PROTOCOL_VERSION = 1


class EventParseError(ValueError):
    """A line that is not a valid event."""


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: ClassVar[str] = ""
    run_id: str
    seq: int = 0
    ts: str = ""
    v: int = PROTOCOL_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        extra = data.pop("extra")
        return {"event": self.kind, **data, **extra}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False, default=str)


@dataclass(frozen=True, kw_only=True)
class Started(Event):
    kind: ClassVar[str] = "started"
    config: dict[str, Any] = field(default_factory=dict)
    backend: str = ""
    device: str = ""
    model: str = ""
    train_examples: int = 0
    eval_examples: int = 0
    total_steps: int = 0
    resumed_from_step: int | None = None


@dataclass(frozen=True, kw_only=True)
class Progress(Event):
    kind: ClassVar[str] = "progress"
    step: int
    total_steps: int
    epoch: float = 0.0
    loss: float | None = None
    lr: float | None = None
    grad_norm: float | None = None
    tokens_per_s: float | None = None
    samples_per_s: float | None = None
    tokens_seen: int = 0
    eta_s: float | None = None
    eta_interval_s: tuple[float, float] | None = None
    elapsed_s: float = 0.0
    mem: dict[str, float | None] = field(default_factory=dict)
    # Preference tuning only (DPO, ORPO; KTO has no pairs to compare): None for SFT.
    reward_margin: float | None = None  # how much more the model now favours the chosen answer than the rejected
    reward_accuracy: float | None = None  # share of pairs in which it favours the chosen answer (0-1)


@dataclass(frozen=True, kw_only=True)
class Eval(Event):
    kind: ClassVar[str] = "eval"
    step: int
    eval_loss: float
    metrics: dict[str, float] = field(default_factory=dict)
    reward_margin: float | None = None  # as in Progress, on the held-out pairs
    reward_accuracy: float | None = None


@dataclass(frozen=True, kw_only=True)
class Checkpoint(Event):
    kind: ClassVar[str] = "checkpoint"
    step: int
    path: str
    manifest_sha256: str = ""
    reason: str = "scheduled"


@dataclass(frozen=True, kw_only=True)
class Anomaly(Event):
    kind: ClassVar[str] = "anomaly"
    anomaly: str
    severity: str  # "info" | "warning" | "critical"
    message: str
    step: int = 0
    evidence: dict[str, Any] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class Recovery(Event):
    kind: ClassVar[str] = "recovery"
    action: str
    message: str
    step: int = 0
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Paused(Event):
    kind: ClassVar[str] = "paused"
    step: int = 0
    released: bool = False
    reason: str = "user"


@dataclass(frozen=True, kw_only=True)
class Resumed(Event):
    kind: ClassVar[str] = "resumed"
    step: int = 0


@dataclass(frozen=True, kw_only=True)
class Completed(Event):
    kind: ClassVar[str] = "completed"
    step: int = 0
    adapter_path: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


@dataclass(frozen=True, kw_only=True)
class Error(Event):
    kind: ClassVar[str] = "error"
    code: str
    message: str
    hint: str = ""
    actions: list[str] = field(default_factory=list)
    exit_code: int = 1


@dataclass(frozen=True, kw_only=True)
class Stopped(Event):
    kind: ClassVar[str] = "stopped"
    step: int = 0
    checkpoint_path: str | None = None
    reason: str = "user"


@dataclass(frozen=True, kw_only=True)
class Heartbeat(Event):
    """Sent while the worker is busy without steps (loading a model, evaluating), so silence means trouble."""

    kind: ClassVar[str] = "heartbeat"
    phase: str = ""
    message: str = ""
    fraction: float | None = None


@dataclass(frozen=True, kw_only=True)
class HardestExamples(Event):
    """The examples the model fits worst after an evaluation: where mislabeled or broken rows show up first.
    Each of `examples` is {fingerprint, loss, tokens, preview}, highest loss first."""

    kind: ClassVar[str] = "hardest"
    step: int = 0
    split: str = "eval"
    examples: list[dict[str, Any]] = field(default_factory=list)


EVENT_TYPES: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (Started, Progress, Eval, Checkpoint, Anomaly, Recovery, Paused, Resumed, Completed, Error,
                Stopped, Heartbeat, HardestExamples)
}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_from_dict(data: dict[str, Any]) -> Event:
    if not isinstance(data, dict):
        raise EventParseError("an event must be a JSON object")
    kind = data.get("event")
    cls = EVENT_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise EventParseError(f"unknown event kind {kind!r}")
    known = {f.name for f in fields(cls)} - {"extra"}
    args = {k: v for k, v in data.items() if k in known}
    extra = {k: v for k, v in data.items() if k not in known and k != "event"}
    if "eta_interval_s" in args and isinstance(args["eta_interval_s"], list):
        args["eta_interval_s"] = tuple(args["eta_interval_s"])
    try:
        return cls(**args, extra=extra)
    except TypeError as exc:
        raise EventParseError(f"{kind} event is missing fields: {exc}") from None


def parse_event(line: str | bytes) -> Event:
    """Parse one JSON line. Raises EventParseError for anything that is not a valid event."""
    try:
        data = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EventParseError(f"not JSON: {exc}") from None
    return event_from_dict(data)
