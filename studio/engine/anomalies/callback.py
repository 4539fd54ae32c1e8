"""AnomalyCallback: plugs the AnomalyGuard into a transformers Trainer.

It observes every logged step (loss, grad_norm, learning_rate, tokens/s, memory) and every evaluation,
emits `anomaly` and `recovery` events, and steers the Trainer through its control flags:

* changes that can be made in place are made at once: tighter gradient clipping (`args.max_grad_norm`) and a
  lower learning rate (optimizer groups and the scheduler's base rates);
* after a rollback, resuming the Trainer from the checkpoint would bring back the old learning rate and
  clipping with the optimizer and scheduler state: the callback puts the recovery state's values back;
* a checkpoint request sets `control.should_save` (first sighting of a finding that leaves the model sound);
* everything that needs the worker (roll back to the last good checkpoint, early stop with the best model
  restored, stop, smaller batch after out-of-memory) lands in `pending_recovery` and ends the loop with
  `control.should_training_stop`; a save or evaluation scheduled for that step is cancelled, so damaged
  weights never become a checkpoint. The worker carries the actions out and reports each one with `applied`.

Reuse the same callback for the Trainer that continues after a rollback: it keeps the monitor's baseline,
the recovery state (rollback count, learning rate) and the one-shot test faults.

Preference runs: the monitor is built for the run's objective and beta (the recipe passes them from the
settings), so the reward rules are on for DPO, ORPO and KTO and never for SFT; each step's `rewards/margins`,
`rewards/accuracies`, `rewards/chosen` and KTO's `kl` go into the metrics.

The Trainer's default `logging_nan_inf_filter` replaces a NaN loss by the average of earlier ones, which
would hide exactly what this callback is for, so it is switched off when training begins.

Test-only faults (STUDIO_TEST_FAULTS, see studio.engine.training.faults): `nan_at_step=K` poisons the
trainable weights with NaN as step K begins (once), `explode_lr_at_step=K` multiplies the learning rate by
1000 as step K begins (once), `ram_frac=F` / `gpu_mem_frac=F` replace the memory readings.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import psutil
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from studio.engine.anomalies.guard import AnomalyGuard
from studio.engine.anomalies.monitor import AnomalyMonitor
from studio.engine.anomalies.policies import Decision, Mode, RecoveryAction, RecoveryState
from studio.engine.anomalies.records import EvalMetrics, StepMetrics
from studio.engine.events import Event
from studio.engine.training.faults import Faults, active_faults

IN_PLACE = frozenset({"tighten_grad_clip", "lower_lr", "none"})
"""Actions the callback carries out itself; all others are the worker's (pending_recovery)."""
EXPLODE_LR_FACTOR = 1000.0

MemoryReader = Callable[[], tuple[float | None, float | None]]
def read_memory() -> tuple[float | None, float | None]:
    """(GPU memory in use, system RAM in use) as fractions; GPU is None without CUDA."""
    import torch

    gpu = None
    if torch.cuda.is_available():
        free, total = torch.cuda.mem_get_info()
        gpu = 1.0 - free / total if total else None
    return gpu, psutil.virtual_memory().percent / 100.0


class AnomalyCallback(TrainerCallback):
    def __init__(self, monitor: AnomalyMonitor, emit: Callable[[Event], object], mode: Mode, *,
                 run_id: str = "", state: RecoveryState | None = None,
                 choose: Callable[[Decision], str] | None = None, faults: Faults | None = None,
                 memory: MemoryReader = read_memory) -> None:
        """`choose` answers "ask" mode questions (the worker pauses, waits for `anomaly_action`, returns its
        key); without it, questions wait in `guard.awaiting` until `answer` is called."""
        self.monitor = monitor
        self.emit = emit
        self.mode = mode
        self.run_id = run_id
        self.choose = choose
        self.faults = faults if faults is not None else active_faults()
        self.memory = memory
        self._initial_state = state
        self.guard: AnomalyGuard | None = None
        self.pending_recovery: list[RecoveryAction] = []
        self._injected: set[str] = set()
        self._last_log: tuple[float, int] | None = None
        self._save_step: int | None = None

    # ---- for the worker -----------------------------------------------------------------------------

    def take_recovery(self) -> list[RecoveryAction]:
        """The actions the worker must carry out now that the Trainer's loop has ended."""
        actions, self.pending_recovery = self.pending_recovery, []
        return actions

    def applied(self, action: RecoveryAction, step: int, **details: Any) -> Event:
        """Record an action the worker carried out (e.g. `restored_step=200` for a rollback)."""
        return self._guard().applied(action, step, **details)

    def answer(self, choice: str) -> list[RecoveryAction]:
        """The user's answer in "ask" mode; its actions are carried out at the next log or evaluation."""
        return self._guard().answer(choice)

    def settle(self) -> None:
        """Put every open "ask" mode question to `choose` (which blocks until the user answers)."""
        guard = self._guard()
        if self.choose is not None:
            while guard.awaiting:
                guard.answer(self.choose(guard.awaiting[0]))

    def save_reason(self, step: int) -> str | None:
        """"anomaly" when the checkpoint being saved at `step` is one this callback asked for."""
        return "anomaly" if step == self._save_step else None

    # ---- Trainer hooks ------------------------------------------------------------------------------

    def on_train_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                       **kwargs: Any) -> None:
        args.logging_nan_inf_filter = False
        if self.guard is None:
            recovery = self._initial_state or RecoveryState(
                lr=args.learning_rate, max_grad_norm=args.max_grad_norm if args.max_grad_norm > 0 else None,
                micro_batch=args.per_device_train_batch_size, accumulation=args.gradient_accumulation_steps)
            self.guard = AnomalyGuard(self.run_id, self.emit, self.mode, recovery, self.monitor)
        self._last_log = None
        self._enforce(self.guard.state, args, kwargs)

    def on_step_begin(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                      **kwargs: Any) -> None:
        step = state.global_step + 1
        if self._fault_due("nan_at_step", step):
            import torch

            with torch.no_grad():
                for param in kwargs["model"].parameters():
                    if param.requires_grad:
                        param.fill_(float("nan"))
        if self._fault_due("explode_lr_at_step", step):
            _scale_lr(kwargs.get("optimizer"), kwargs.get("lr_scheduler"), EXPLODE_LR_FACTOR)

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, float] | None = None, **kwargs: Any) -> None:
        logs = logs or {}
        if "loss" not in logs:
            return
        gpu, ram = self.memory()
        metrics = StepMetrics(
            step=state.global_step, loss=_number(logs.get("loss")), grad_norm=_number(logs.get("grad_norm")),
            lr=_number(logs.get("learning_rate")), tokens_per_s=self._tokens_per_s(state),
            gpu_mem_frac=self.faults.get_float("gpu_mem_frac") or gpu,
            ram_frac=self.faults.get_float("ram_frac") or ram,
            reward_margin=_number(logs.get("rewards/margins")),
            reward_accuracy=_number(logs.get("rewards/accuracies")),
            reward_chosen=_number(logs.get("rewards/chosen")),
            kl=_number(logs.get("kl")),
        )
        self._guard().observe_step(metrics)
        self._steer(args, state, control, kwargs)

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                    metrics: dict[str, float] | None = None, **kwargs: Any) -> None:
        eval_loss = _number((metrics or {}).get("eval_loss"))
        if eval_loss is None:
            return
        self._guard().observe_eval(EvalMetrics(step=state.global_step, eval_loss=eval_loss))
        self._steer(args, state, control, kwargs)

    # ---- internals ----------------------------------------------------------------------------------

    def _guard(self) -> AnomalyGuard:
        if self.guard is None:
            raise RuntimeError("AnomalyCallback is used before the Trainer began training")
        return self.guard

    def _fault_due(self, name: str, step: int) -> bool:
        if self.faults.get_int(name) != step or name in self._injected:
            return False
        self._injected.add(name)
        return True

    @staticmethod
    def _enforce(recovery: RecoveryState, args: TrainingArguments, hooks: dict[str, Any]) -> None:
        """Resuming from a checkpoint reloads the old optimizer and scheduler, learning rate included: put
        the recovery state's learning rate and clipping back on top of them."""
        if recovery.max_grad_norm is not None:
            args.max_grad_norm = recovery.max_grad_norm
        optimizer, scheduler = hooks.get("optimizer"), hooks.get("lr_scheduler")
        groups = getattr(optimizer, "param_groups", [])
        bases = getattr(scheduler, "base_lrs", None) or [group["lr"] for group in groups]
        if bases and bases[0] > 0 and not math.isclose(bases[0], recovery.lr, rel_tol=1e-9):
            _scale_lr(optimizer, scheduler, recovery.lr / bases[0])

    def _tokens_per_s(self, state: TrainerState) -> float | None:
        now, tokens = time.monotonic(), int(state.num_input_tokens_seen or 0)
        previous, self._last_log = self._last_log, (now, tokens)
        if previous is None or tokens <= previous[1] or now <= previous[0]:
            return None
        return (tokens - previous[1]) / (now - previous[0])

    def _steer(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               hooks: dict[str, Any]) -> None:
        guard = self._guard()
        self.settle()
        for action in guard.take_pending():
            if action.kind == "tighten_grad_clip":
                args.max_grad_norm = float(action.params["new_max_grad_norm"])
            elif action.kind == "lower_lr":
                _scale_lr(hooks.get("optimizer"), hooks.get("lr_scheduler"),
                          action.params["new_lr"] / action.params["old_lr"])
            if action.kind in IN_PLACE:
                guard.applied(action, state.global_step)
            else:
                self.pending_recovery.append(action)
        if self.pending_recovery:
            control.should_training_stop = True
            if any(a.kind == "rollback_and_halve_lr" for a in self.pending_recovery):
                control.should_save = False  # never seal damaged weights as a checkpoint
                control.should_evaluate = False
        elif guard.take_checkpoint_request():
            control.should_save = True
            self._save_step = state.global_step


def _number(value: object) -> float | None:
    """A logged value as a float, keeping NaN/Inf (they are the point); None for anything else."""
    if value is None:
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _scale_lr(optimizer: Any, scheduler: Any, factor: float) -> None:
    """Scale the learning rate now and for the rest of the schedule (schedulers multiply their base rates)."""
    if optimizer is not None:
        for group in optimizer.param_groups:
            group["lr"] *= factor
            if "initial_lr" in group:
                group["initial_lr"] *= factor
    for name in ("base_lrs", "_last_lr"):  # _last_lr is what the Trainer logs as the current rate
        if isinstance(getattr(scheduler, name, None), list):
            setattr(scheduler, name, [value * factor for value in getattr(scheduler, name)])

