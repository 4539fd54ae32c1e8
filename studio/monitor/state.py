"""What the dashboard knows about one run, folded from its events: plain Python, no Qt.

The status here is only ever what the worker reported (or the supervisor saw: an exit without a final
event means the run was interrupted), never what the GUI hopes happened after a click.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from studio.engine.events import (
    Anomaly,
    Checkpoint,
    Completed,
    Error,
    Eval,
    Event,
    Heartbeat,
    Paused,
    Progress,
    Recovery,
    Resumed,
    Started,
    Stopped,
)


class RunStatus(str, Enum):
    IDLE = "idle"  # nothing attached yet
    STARTING = "starting"  # worker launched, loading model and data
    RUNNING = "running"
    PAUSED = "paused"  # held in memory, resume is instant
    RELEASED = "released"  # checkpointed and exited; resume starts a new worker
    STOPPED = "stopped"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # the worker vanished without saying goodbye

    @property
    def alive(self) -> bool:
        """A worker process is there to take commands."""
        return self in {RunStatus.STARTING, RunStatus.RUNNING, RunStatus.PAUSED}

    @property
    def finished(self) -> bool:
        return self in {RunStatus.STOPPED, RunStatus.COMPLETED, RunStatus.FAILED}


@dataclass
class RunState:
    run_id: str = ""
    status: RunStatus = RunStatus.IDLE
    model: str = ""
    device: str = ""
    backend: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    total_steps: int = 0
    epoch: float = 0.0
    elapsed_s: float = 0.0
    eta_s: float | None = None
    eta_interval_s: tuple[float, float] | None = None
    loss: float | None = None
    phase: str = ""  # what a busy worker without steps is doing (loading, evaluating)
    eval_loss: float | None = None
    best_eval_loss: float | None = None
    best_eval_step: int | None = None
    peak_memory: dict[str, float] = field(default_factory=dict)
    anomalies: list[Anomaly] = field(default_factory=list)
    recoveries: list[Recovery] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    completed: Completed | None = None
    stopped: Stopped | None = None
    error: Error | None = None
    crash: str = ""  # why the worker vanished (its last stderr lines), when it ended without an event

    @property
    def fraction(self) -> float:
        if self.status is RunStatus.COMPLETED:
            return 1.0
        return min(self.step / self.total_steps, 1.0) if self.total_steps else 0.0

    @property
    def peak_ram_bytes(self) -> float | None:
        return max((v for k, v in self.peak_memory.items() if "rss" in k), default=None)

    @property
    def peak_gpu_bytes(self) -> float | None:
        return max((v for k, v in self.peak_memory.items() if "gpu" in k), default=None)

    def apply(self, event: Event) -> None:
        self.run_id = self.run_id or event.run_id
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def mark_exited(self, exit_code: int, crash: str = "") -> None:
        """The worker process ended; without a final event it was interrupted (killed, crashed)."""
        if self.status.alive:
            self.status = RunStatus.STOPPED if exit_code == 130 else RunStatus.INTERRUPTED
            if self.status is RunStatus.INTERRUPTED:
                self.crash = crash

    # ---- handlers ------------------------------------------------------------------------------------

    def _started(self, e: Started) -> None:
        self.status = RunStatus.STARTING
        self.model, self.device, self.backend = e.model, e.device, e.backend
        self.config = dict(e.config)
        self.total_steps = e.total_steps or self.total_steps
        if e.resumed_from_step is not None:
            self.step = e.resumed_from_step
        self.completed = self.stopped = self.error = None

    def _progress(self, e: Progress) -> None:
        if self.status in {RunStatus.IDLE, RunStatus.STARTING, RunStatus.RELEASED, RunStatus.INTERRUPTED}:
            self.status = RunStatus.RUNNING
        self.step, self.total_steps, self.epoch = e.step, e.total_steps or self.total_steps, e.epoch
        self.elapsed_s, self.eta_s, self.eta_interval_s = e.elapsed_s, e.eta_s, e.eta_interval_s
        self.phase = ""
        if e.loss is not None and math.isfinite(e.loss):
            self.loss = e.loss
        for key, value in e.mem.items():
            if isinstance(value, int | float) and math.isfinite(value) and not key.endswith("total"):
                self.peak_memory[key] = max(self.peak_memory.get(key, 0.0), float(value))

    def _eval(self, e: Eval) -> None:
        if not math.isfinite(e.eval_loss):
            return
        self.eval_loss = e.eval_loss
        if self.best_eval_loss is None or e.eval_loss < self.best_eval_loss:
            self.best_eval_loss, self.best_eval_step = e.eval_loss, e.step

    def _heartbeat(self, e: Heartbeat) -> None:
        """A busy worker without steps says what it is doing; while training, the steps say it."""
        self.phase = "" if e.phase == "training" else (e.message or e.phase.replace("_", " ").capitalize())

    def _paused(self, e: Paused) -> None:
        self.status = RunStatus.RELEASED if e.released else RunStatus.PAUSED
        self.step = e.step or self.step

    def _resumed(self, e: Resumed) -> None:
        self.status = RunStatus.RUNNING
        self.step = e.step or self.step

    def _completed(self, e: Completed) -> None:
        self.status = RunStatus.COMPLETED
        self.completed = e
        self.step = e.step or self.step
        for key, value in e.metrics.items():
            if "peak" in key and isinstance(value, int | float):
                self.peak_memory[key] = float(value)

    def _stopped(self, e: Stopped) -> None:
        self.status = RunStatus.STOPPED
        self.stopped = e
        self.step = e.step or self.step

    def _error(self, e: Error) -> None:
        self.status = RunStatus.FAILED
        self.error = e


_HANDLERS: dict[type[Event], Any] = {
    Started: RunState._started,
    Progress: RunState._progress,
    Eval: RunState._eval,
    Heartbeat: RunState._heartbeat,
    Paused: RunState._paused,
    Resumed: RunState._resumed,
    Completed: RunState._completed,
    Stopped: RunState._stopped,
    Error: RunState._error,
    Anomaly: lambda self, e: self.anomalies.append(e),
    Recovery: lambda self, e: self.recoveries.append(e),
    Checkpoint: lambda self, e: self.checkpoints.append(e),
}
