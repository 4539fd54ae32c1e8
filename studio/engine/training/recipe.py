"""The training recipe: setup, train, finish, in that order (torchtune's single-device recipes are the model).

`TrainingRecipe` owns the run's one settings object, `settings` (a TrainConfig); every Trainer is built from
it and every callback reads it from here. A Trainer's loop that ends with a recovery to carry out looks the
action up in a dispatch table (AFTER_LOOP, AFTER_OOM); the action's handler answers with a `Retry` (new
settings and the checkpoint to resume from, which the recipe rebuilds the Trainer from) or with the run's
`Ending`, which `finish` reports. Only the worker process imports this module (through entry.run_worker,
once its stop handlers are up), so torch, transformers and TRL load at its top.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NoReturn

from transformers import PreTrainedTokenizerBase, Trainer, TrainerCallback, set_seed

from studio.engine.anomalies import AnomalyMonitor, RecoveryAction, oom_exhausted_error
from studio.engine.anomalies.callback import AnomalyCallback
from studio.engine.anomalies.guard import AnomalyGuard
from studio.engine.config import TrainConfig
from studio.engine.errors import ExitCode
from studio.engine.events import Anomaly, Completed, Heartbeat, Paused, Started, Stopped
from studio.engine.runs.registry import Registry
from studio.engine.training import checkpoints
from studio.engine.training.backends.base import TrainingBackend, check_method_supported, device_type
from studio.engine.training.backends.hf import save_final_adapter
from studio.engine.training.callbacks import HardestExamplesCallback, StudioCallback
from studio.engine.training.control_channel import ControlChannel
from studio.engine.training.data import TrainingData
from studio.engine.training.disk import check_free_space, run_disk_needed
from studio.engine.training.distributed import anomaly_mode_for, world_size
from studio.engine.training.faults import active_faults
from studio.engine.training.heartbeats import Heartbeats
from studio.engine.training.interrupted import TrainingInterrupted
from studio.engine.training.lockstep import Lockstep, LockstepCallback
from studio.engine.training.oom import free_memory, is_out_of_memory
from studio.engine.training.questions import ask_user
from studio.engine.training.results import final_metrics, restore_best, summary, total_steps, verdict
from studio.engine.training.scoring import score_after_training
from studio.engine.training.setup import load_training_splits, model_folder, new_trainer, select_backend
from studio.engine.training.sinks import EventEmitter


@dataclass(frozen=True)
class WorkerContext:
    """What the worker process lends the recipe: where the run lives and how it talks to the world."""

    run_dir: Path
    emitter: EventEmitter
    channel: ControlChannel
    beats: Heartbeats
    registry: Registry
    on_training: Callable[[], None]  # from here a stop finishes the step and checkpoints

    @property
    def run_id(self) -> str:
        return self.run_dir.name


@dataclass(frozen=True)
class Ending:
    """How training ended, for `finish` to report."""

    outcome: Literal["completed", "stopped", "released"]
    step: int
    checkpoint_path: str | None = None
    reason: str = ""
    restored_step: int | None = None  # the best checkpoint put back by an early stop


@dataclass(frozen=True)
class Retry:
    """A recovery's answer: build the next Trainer from `settings`, resuming from `resume` (None: the start);
    `fresh_model` when the current weights cannot be resumed over (nothing to resume from, and damaged)."""

    settings: TrainConfig
    resume: checkpoints.CheckpointInfo | None
    fresh_model: bool


@dataclass(frozen=True)
class Trigger:
    """Why a Trainer's loop ended: at which step, and the out-of-memory error when that was it."""

    step: int
    error: BaseException | None = None


Handler = Callable[["TrainingRecipe", RecoveryAction, Trigger], "Retry | Ending"]


@dataclass(frozen=True)
class Dispatch:
    """Recovery actions in order of precedence (the first one pending is carried out) and what happens when
    none is pending."""

    handlers: dict[str, Handler]
    otherwise: Callable[[TrainingRecipe, Trigger], Retry | Ending]


class TrainingRecipe:
    """One run on rank 0: `setup()`, then `train()` until an Ending, then `finish(ending)` for the exit code."""

    backend: TrainingBackend
    model_path: Path
    model: Any  # the PEFT-wrapped model the Trainer trains
    tokenizer: PreTrainedTokenizerBase
    data: TrainingData
    anomaly: AnomalyCallback
    callback: StudioCallback
    callbacks: list[TrainerCallback]
    trainer: Trainer | None
    resume: checkpoints.CheckpointInfo | None

    def __init__(self, context: WorkerContext, settings: TrainConfig) -> None:
        self.context = context
        self.settings = settings  # the one owner of the run's settings; a recovery replaces it whole
        self.lockstep = Lockstep()
        self.started_at = time.monotonic()

    # ---- setup -----------------------------------------------------------------------------------------

    def setup(self) -> None:
        """Everything before the first step: checks, model, data, callbacks, the Trainer, the `started` event."""
        device = device_type()
        check_method_supported(self.settings, device)
        self.backend, backend_reason = select_backend(self.settings)
        self._load_model()
        self._prepare_data()
        self.context.beats.set_phase("building_trainer")
        set_seed(self.settings.seed)
        self.model = self.backend.apply_adapter(self.model, self.settings)
        self.callbacks = self._build_callbacks()
        self.trainer = self._new_trainer(self.model)
        self.resume = self.last_good()
        self._announce(device, backend_reason)

    def _load_model(self) -> None:
        context = self.context
        context.beats.set_phase("loading_model")
        context.emitter.emit(Heartbeat, phase="loading_model", message="Loading the model")
        self.model_path = model_folder(self.settings)
        needed = run_disk_needed(self.settings, self.model_path, context.run_dir)
        check_free_space(context.run_dir, context.run_id, needed)  # before the long load
        self.model, self.tokenizer = self.backend.load(self.settings, self.model_path)
        time.sleep(active_faults().get_float("sleep_while_loading") or 0.0)

    def _prepare_data(self) -> None:
        self.context.beats.set_phase("preparing_data")
        self.context.emitter.emit(Heartbeat, phase="preparing_data", message="Preparing the dataset")
        self.data = load_training_splits(self.settings, self.model_path, self.tokenizer)

    def _build_callbacks(self) -> list[TrainerCallback]:
        context, settings = self.context, self.settings
        anomaly_mode = anomaly_mode_for(settings.anomaly_mode, world_size())
        if anomaly_mode != settings.anomaly_mode:
            context.emitter.emit(
                Heartbeat,
                phase="building_trainer",
                message=f"Training on {world_size()} processes: Studio will report problems but not fix them "
                "automatically (its fixes would reach only one process).",
            )
        choose = ask_user(context.run_id, context.emitter, context.channel, context.beats, context.registry)
        monitor = AnomalyMonitor(objective=settings.objective, beta=settings.beta)  # reward rules for DPO/ORPO/KTO
        self.anomaly = AnomalyCallback(monitor, context.emitter.forward, anomaly_mode, run_id=context.run_id,
                                       choose=choose)
        self.callback = StudioCallback(
            lambda: self.settings,
            context.run_dir,
            context.emitter,
            context.channel,
            active_faults(),
            context.beats.set_phase,
            on_pause_change=lambda paused: context.registry.set_status(
                context.run_id, "paused" if paused else "running"
            ),
            save_reason=self.anomaly.save_reason,
            lockstep=self.lockstep,
        )
        hardest = None
        held = self.data.held_out
        if settings.hardest_top_n and held is not None and world_size() == 1 and settings.objective == "sft":
            # Only a single process may score on its own: on several, a step outside the lockstep would hang them.
            hardest = HardestExamplesCallback(
                held, self.tokenizer, settings, context.emitter, context.beats.set_phase, self.callback.between_steps
            )
        return build_callbacks(self.callback, self.anomaly, hardest)

    def _new_trainer(self, model: Any) -> Trainer:
        trainer = new_trainer(
            self.backend, model, self.tokenizer, self.data, self.settings, self.context.run_dir, self.callbacks
        )
        self.callback.trainer = trainer
        return trainer

    def _fresh_model(self) -> Any:
        """The base model with a new adapter, for a retry that has no good checkpoint to resume from."""
        set_seed(self.settings.seed)
        base, _ = self.backend.load(self.settings, self.model_path)
        return self.backend.apply_adapter(base, self.settings)

    def last_good(self) -> checkpoints.CheckpointInfo | None:
        """The checkpoint to resume from; each damaged one on the way is reported, and skipped."""
        return checkpoints.latest_good(self.context.run_dir, self._on_damaged)

    def _on_damaged(self, info: checkpoints.CheckpointInfo, problem: str) -> None:
        self.context.emitter.emit(
            Anomaly,
            anomaly="damaged_checkpoint",
            severity="warning",
            step=info.step,
            message=f"The checkpoint at step {info.step} cannot be used: {problem}. "
            "Studio uses the one before it.",
            evidence={"path": str(info.path), "problem": problem},
            actions=["Nothing to do: training continues from the previous checkpoint."],
        )

    def _announce(self, device: str, backend_reason: str) -> None:
        trainer, data = self.current_trainer(), self.data
        self.context.emitter.emit(
            Started,
            config=self.settings.model_dump(mode="json"),
            backend=self.backend.name,
            device=device,
            model=str(self.model_path),
            train_examples=len(data.train.data),
            eval_examples=len(data.held_out.data) if data.held_out else 0,
            total_steps=total_steps(trainer),
            resumed_from_step=self.resume.step if self.resume else None,
            extra={
                "backend_reason": backend_reason,
                "pid": os.getpid(),
                "packing": bool(getattr(trainer.args, "packing", False)),  # SFT's own settings
                "padding_free": bool(getattr(trainer.args, "padding_free", False)),
                "excluded_examples": data.excluded,
            },
        )

    # ---- train -----------------------------------------------------------------------------------------

    def train(self) -> Ending:
        """Train until the run ends; after a recovery, the next Trainer is built from the settings it returned."""
        self.context.on_training()
        while True:
            result = self._attempt()
            if isinstance(result, Ending):
                self.lockstep.finish()  # the loop has ended on every rank: close the process group together
                return result
            self._rebuild(result)

    def current_trainer(self) -> Trainer:
        assert self.trainer is not None, "a Trainer is built in setup and again after every recovery"
        return self.trainer

    def _attempt(self) -> Retry | Ending:
        """One Trainer's loop, and what comes of it. No local holds the Trainer: after an out-of-memory error
        the recipe's reference is the one to drop."""
        self.context.beats.set_phase("training")
        try:
            self.current_trainer().train(resume_from_checkpoint=str(self.resume.path) if self.resume else None)
        except TrainingInterrupted as stop:
            step = stop.checkpoint.step if stop.checkpoint else self.current_trainer().state.global_step
            path = str(stop.checkpoint.path) if stop.checkpoint else None
            return Ending(stop.outcome, step, path, stop.reason)
        except Exception as exc:
            if not is_out_of_memory(exc) or self.anomaly.guard is None:
                raise
            return self._after_out_of_memory(exc)
        step = self.current_trainer().state.global_step
        return self._recover(AFTER_LOOP, self.anomaly.take_recovery(), Trigger(step))

    def _after_out_of_memory(self, exc: Exception) -> Retry | Ending:
        """Free what the failed step held, then let the anomaly guard decide (a retry, or no more)."""
        step = self.current_trainer().state.global_step
        self.trainer = self.callback.trainer = None  # drop the failed step's tensors before freeing memory
        free_memory()
        guard = self.guard()
        guard.observe_oom(step, str(exc))
        self.anomaly.settle()
        return self._recover(AFTER_OOM, guard.take_pending(), Trigger(step, exc))

    def guard(self) -> AnomalyGuard:
        assert self.anomaly.guard is not None, "the guard exists once the first Trainer began training"
        return self.anomaly.guard

    def _recover(self, table: Dispatch, actions: list[RecoveryAction], trigger: Trigger) -> Retry | Ending:
        pending = {action.kind: action for action in actions}
        for kind, handler in table.handlers.items():
            if kind in pending:
                return handler(self, pending[kind], trigger)
        return table.otherwise(self, trigger)

    def _rebuild(self, retry: Retry) -> None:
        """The recovery's settings become the run's settings, and the next Trainer is built from them."""
        self.trainer = self.callback.trainer = None  # the old Trainer's optimizer state goes first
        self.settings = retry.settings
        self.resume = retry.resume
        if retry.fresh_model:
            self.model = self._fresh_model()
        self.trainer = self._new_trainer(self.model)  # resuming reloads the adapter weights over the model

    # ---- finish ----------------------------------------------------------------------------------------

    def finish(self, ending: Ending) -> int:
        """Report the ending (`completed`, `paused` and released, or `stopped`) and return the exit code."""
        context = self.context
        peak = int(self.callback.peak_rss)
        if ending.outcome == "released":
            context.emitter.emit(Paused, step=ending.step, released=True, reason=ending.reason)
            context.registry.mark_finished(context.run_id, "paused", int(ExitCode.OK), peak_memory=peak)
            return int(ExitCode.OK)
        if ending.outcome == "stopped":
            context.emitter.emit(
                Stopped, step=ending.step, checkpoint_path=ending.checkpoint_path, reason=ending.reason
            )
            context.registry.mark_finished(context.run_id, "stopped", int(ExitCode.STOPPED), peak_memory=peak)
            return int(ExitCode.STOPPED)
        return self._completed(ending)

    def _completed(self, ending: Ending) -> int:
        context, trainer = self.context, self.current_trainer()
        context.beats.set_phase("saving")
        restored = restore_best(trainer, context.run_dir) if self.callback.early_stopped else ending.restored_step
        adapter_dir = save_final_adapter(trainer.model, self.tokenizer, context.run_dir)  # staged, then renamed
        metrics = final_metrics(trainer, self.callback, time.monotonic() - self.started_at, restored)
        if self.settings.objective == "sft":  # per-example losses measure how well answers are imitated
            metrics.update(
                score_after_training(
                    context.run_dir, self.settings, trainer, self.tokenizer, self.data,
                    context.emitter, context.channel, context.beats.set_phase, context.registry,
                )
            )
        outcome = verdict(context.run_dir, trainer.state.global_step)
        metrics.update(
            summary=outcome.headline,
            trustworthy=outcome.trustworthy,
            anomalies=outcome.anomalies,
            recoveries=outcome.recoveries,
        )
        context.emitter.emit(
            Completed,
            step=trainer.state.global_step,
            adapter_path=str(adapter_dir),
            metrics=metrics,
            summary=f"{outcome.headline} {summary(metrics)}",
        )
        context.registry.mark_finished(
            context.run_id, "completed", int(ExitCode.OK), metrics=metrics, peak_memory=int(metrics["peak_rss"])
        )
        return int(ExitCode.OK)


def build_callbacks(
    studio_callback: StudioCallback, anomaly_callback: AnomalyCallback, hardest_callback: TrainerCallback | None = None
) -> list[TrainerCallback]:
    """Every TrainerCallback of a run, in order: Studio's events/control/checkpoints first, then the hardest
    examples after each evaluation (when on), then observers of the metrics stream (the anomaly guard, which
    may ask for a checkpoint or end the loop), and last the lockstep that hands the flags they set to the
    other ranks of a distributed run."""
    extra = [hardest_callback] if hardest_callback is not None else []
    return [studio_callback, *extra, anomaly_callback, LockstepCallback(studio_callback.lockstep)]


# ---- the recovery actions ------------------------------------------------------------------------------


def _roll_back(recipe: TrainingRecipe, action: RecoveryAction, trigger: Trigger) -> Retry:
    """Back to the last good checkpoint (the start when there is none) with the lower learning rate, which
    the next Trainer is built with."""
    resume = recipe.last_good()
    recipe.anomaly.applied(action, trigger.step, restored_step=resume.step if resume else 0)
    settings = recipe.settings.updated(learning_rate=float(action.params["new_lr"]))
    return Retry(settings, resume, fresh_model=resume is None)


def _stop_for_anomaly(recipe: TrainingRecipe, action: RecoveryAction, trigger: Trigger) -> Ending:
    """The guard gave up (or the user chose to stop): the run ends stopped, at its last good checkpoint."""
    recipe.anomaly.applied(action, trigger.step)
    good = checkpoints.latest_good(recipe.context.run_dir)
    return Ending("stopped", trigger.step, str(good.path) if good else None, "anomaly")


def _early_stop(recipe: TrainingRecipe, action: RecoveryAction, trigger: Trigger) -> Ending:
    """The held-out loss stopped improving: the best checkpoint's weights are put back and the run completes."""
    restored = restore_best(recipe.current_trainer(), recipe.context.run_dir)
    recipe.anomaly.applied(action, trigger.step, restored_step=restored)
    return Ending("completed", trigger.step, restored_step=restored)


def _nothing_pending(_recipe: TrainingRecipe, trigger: Trigger) -> Ending:
    return Ending("completed", trigger.step)


def _smaller_batch(recipe: TrainingRecipe, action: RecoveryAction, trigger: Trigger) -> Retry:
    """Out of memory: the same effective batch in smaller micro-batches, from the last good checkpoint (or the
    start: a model that failed after its first step is replaced)."""
    recipe.anomaly.applied(action, trigger.step)
    settings = recipe.settings.updated(
        micro_batch_size=int(action.params["new_micro_batch"]),
        gradient_accumulation=int(action.params["new_accumulation"]),
    )
    resume = recipe.last_good()
    return Retry(settings, resume, fresh_model=resume is None and trigger.step > 0)


def _out_of_retries(recipe: TrainingRecipe, action: RecoveryAction, trigger: Trigger) -> NoReturn:
    """Out of memory with no retry left: exit 3 with advice."""
    recipe.anomaly.applied(action, trigger.step)
    state = recipe.guard().state
    raise oom_exhausted_error(state.micro_batch, state.accumulation, state.oom_retries) from trigger.error


def _not_retried(_recipe: TrainingRecipe, trigger: Trigger) -> NoReturn:
    """Out of memory where the mode does not retry: the error itself ends the run."""
    assert trigger.error is not None
    raise trigger.error


AFTER_LOOP = Dispatch(
    {"stop_training": _stop_for_anomaly, "early_stop_restore_best": _early_stop, "rollback_and_halve_lr": _roll_back},
    otherwise=_nothing_pending,
)
"""After a Trainer's loop returned: a stop outranks an early stop, which outranks a rollback."""

AFTER_OOM = Dispatch(
    {"reduce_batch_for_oom": _smaller_batch, "stop_training": _out_of_retries},
    otherwise=_not_retried,
)
"""After an out-of-memory error: a retry with smaller micro-batches, else exit 3."""
