"""The bridge between the Trainer's loop and Studio: events out, control commands in, checkpoints sealed.

`StudioCallback` turns each logged step into a `progress` event (loss, grad norm, lr, tokens/s, memory),
acts on commands between optimizer steps (so a pause or stop never cuts a step in half) and seals the
Trainer's checkpoints. `HardestExamplesCallback` reports the held-out examples the model fits worst after
each evaluation. Other concerns (the anomaly guard) are separate TrainerCallbacks that the recipe adds
beside them in `recipe.build_callbacks`.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import torch
from transformers import (
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from studio.engine.config import TrainConfig
from studio.engine.control import ControlCommand
from studio.engine.events import Checkpoint, Eval, HardestExamples, Paused, Progress, Resumed
from studio.engine.training import checkpoints
from studio.engine.training.control_channel import ControlChannel
from studio.engine.training.data import TokenizedSplit
from studio.engine.training.example_loss import pad_token_id, pick_positions, preview, render, score_examples
from studio.engine.training.faults import Faults
from studio.engine.training.interrupted import TrainingInterrupted
from studio.engine.training.lockstep import Lockstep, Requests, save_in_lockstep
from studio.engine.training.sinks import EventEmitter

PAUSE_POLL_S = 0.5


def memory_snapshot() -> dict[str, float | None]:
    """Resident memory of this process and, on CUDA, allocated/peak/total GPU memory, in bytes."""
    snapshot: dict[str, float | None] = {
        "rss": float(psutil.Process().memory_info().rss),
        "ram_total": float(psutil.virtual_memory().total),
    }
    if torch.cuda.is_available():
        snapshot["gpu_used"] = float(torch.cuda.memory_allocated())
        snapshot["gpu_peak"] = float(torch.cuda.max_memory_allocated())
        snapshot["gpu_total"] = float(torch.cuda.get_device_properties(0).total_memory)
    return snapshot


class StudioCallback(TrainerCallback):
    """Events, control and checkpoints for rank 0. It keeps no settings of its own: `settings` reads the
    recipe's one settings object, which a recovery may replace between two Trainers."""

    def __init__(
        self,
        settings: Callable[[], TrainConfig],
        run_dir: Path,
        emitter: EventEmitter,
        channel: ControlChannel,
        faults: Faults,
        set_phase: Callable[[str], None],
        on_pause_change: Callable[[bool], None] = lambda _paused: None,
        save_reason: Callable[[int], str | None] = lambda _step: None,
        lockstep: Lockstep | None = None,
    ) -> None:
        self.settings = settings
        self.run_dir = run_dir
        self.emitter = emitter
        self.channel = channel
        self.faults = faults
        self.set_phase = set_phase
        self.on_pause_change = on_pause_change  # the worker records "paused"/"running" in the registry
        self.save_reason = save_reason  # why a checkpoint outside the schedule was asked for (e.g. "anomaly")
        self.trainer: Trainer | None = None  # set by the recipe once the trainer exists (to save on request)
        self.lockstep = lockstep or Lockstep()  # the other ranks of a distributed run take the same decisions
        self.peak_rss = 0.0
        self.last_eval: tuple[int, float] | None = None
        self.best_eval: tuple[int, float] | None = None
        self._evals_without_gain = 0
        self.early_stopped = False
        self._paused_s = 0.0
        self._paused_at: float | None = None  # while paused in memory, between steps
        self._start = time.monotonic()
        self._last_log: tuple[float, int] | None = None  # (active seconds, tokens seen)
        self._step_times: deque[float] = deque(maxlen=20)

    # ---- time ---------------------------------------------------------------------------------------

    def active_s(self) -> float:
        """Seconds spent training, pauses excluded (so tokens/s and ETA stay honest)."""
        return time.monotonic() - self._start - self._paused_s

    # ---- Trainer hooks ------------------------------------------------------------------------------

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.set_phase("training")
        self._start = time.monotonic()
        self._last_log = (0.0, state.num_input_tokens_seen)

    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.between_steps(state)
        oom_step = self.faults.get_int("oom_at_step")
        fits = self.faults.get_int("oom_above_micro_batch")
        if oom_step == state.global_step + 1 and (fits is None or args.per_device_train_batch_size > fits):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected by a test)")

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        delay = self.faults.get_float("sleep_per_step")
        if delay:
            time.sleep(delay)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        logs = logs or {}
        if "loss" not in logs:
            return
        now = self.active_s()
        tokens = state.num_input_tokens_seen
        tokens_per_s = None
        if self._last_log is not None and now > self._last_log[0]:
            tokens_per_s = (tokens - self._last_log[1]) / (now - self._last_log[0])
            self._step_times.append((now - self._last_log[0]) / max(1, args.logging_steps))
        self._last_log = (now, tokens)
        mem = memory_snapshot()
        self.peak_rss = max(self.peak_rss, mem["rss"] or 0.0)
        eta, interval = self._eta(state)
        samples_per_s = None
        if self._step_times:
            samples_per_s = args.per_device_train_batch_size * args.gradient_accumulation_steps / self._step_times[-1]
        self.emitter.emit(
            Progress,
            step=state.global_step,
            total_steps=state.max_steps,
            epoch=float(state.epoch or 0.0),
            loss=_float(logs.get("loss")),
            lr=_float(logs.get("learning_rate")),
            grad_norm=_float(logs.get("grad_norm")),
            tokens_per_s=tokens_per_s,
            samples_per_s=samples_per_s,
            tokens_seen=int(tokens),
            eta_s=eta,
            eta_interval_s=interval,
            elapsed_s=now,
            mem=mem,
            **rewards(logs),
        )

    def on_prediction_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.set_phase("evaluating")
        self.between_steps(state)  # an evaluation on a CPU can take minutes: stay responsive
        self.set_phase("evaluating")

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        self.set_phase("training")
        loss = _float((metrics or {}).get("eval_loss"))
        if loss is None or not math.isfinite(loss):
            return
        self.last_eval = (state.global_step, loss)
        self.emitter.emit(
            Eval,
            step=state.global_step,
            eval_loss=loss,
            metrics={k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float))},
            **rewards(metrics or {}, "eval_"),
        )
        settings = self.settings()
        if self.best_eval is None or loss < self.best_eval[1] - settings.early_stopping_min_delta:
            self.best_eval = (state.global_step, loss)
            self._evals_without_gain = 0
            if settings.early_stopping_patience is not None:
                control.should_save = True  # the best state must exist on disk to be restored
        else:
            self._evals_without_gain += 1
            patience = settings.early_stopping_patience
            if patience is not None and self._evals_without_gain >= patience:
                self.early_stopped = True
                control.should_training_stop = True

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self.lockstep.barrier()  # every rank has written its files (RNG state) into the folder
        reason = self.save_reason(state.global_step) or "scheduled"
        self.seal(Path(str(args.output_dir)) / f"checkpoint-{state.global_step}", state.global_step, reason)

    # ---- checkpoints and commands -------------------------------------------------------------------

    def seal(self, staged: Path, step: int, reason: str) -> checkpoints.CheckpointInfo:
        eval_loss = self.last_eval[1] if self.last_eval and self.last_eval[0] == step else None
        info = checkpoints.seal(staged, self.run_dir, step, eval_loss)
        self.emitter.emit(
            Checkpoint, step=step, path=str(info.path), manifest_sha256=info.manifest_sha256, reason=reason
        )
        settings = self.settings()
        keep_best = max(settings.keep_best_checkpoints, 1 if settings.early_stopping_patience else 0)
        checkpoints.apply_retention(self.run_dir, keep_best, settings.keep_last_checkpoints)
        return info

    def save_now(self, state: TrainerState, reason: str) -> checkpoints.CheckpointInfo:
        """Checkpoint between steps, outside the Trainer's own schedule (stop, release, or a request)."""
        existing = checkpoints.list_checkpoints(self.run_dir)
        have_it = bool(
            existing and existing[-1].step == state.global_step and checkpoints.verify(existing[-1].path) is None
        )
        self.set_phase("checkpointing")
        if not save_in_lockstep(self.trainer, self.lockstep, have_it=have_it):
            self.set_phase("training")
            return existing[-1]
        assert self.trainer is not None  # save_in_lockstep has just saved through it
        info = self.seal(
            Path(str(self.trainer.args.output_dir)) / f"checkpoint-{state.global_step}", state.global_step, reason
        )
        self.set_phase("training")
        return info

    def between_steps(self, state: TrainerState) -> None:
        """Take the queued commands, agree on them with the other ranks (if any), then stop, release or save.
        While paused, every rank comes back for another round (a checkpoint can be asked for meanwhile)."""
        while True:
            interrupt, checkpoint = self._handle_commands(state)
            agreed = self.lockstep.agree(
                Requests(
                    stop=interrupt is not None and interrupt.command == "stop",
                    release=interrupt is not None and interrupt.command == "pause_release",
                    checkpoint=checkpoint,
                    hold=self._paused_at is not None,
                )
            )
            if agreed.interrupt:
                reason = str(interrupt.args.get("reason", "user")) if interrupt else "signal"
                info = self.save_now(state, "stop" if agreed.interrupt == "stopped" else "release")
                raise TrainingInterrupted(agreed.interrupt, info, reason)
            if agreed.checkpoint:
                self.save_now(state, "requested")
            if not agreed.hold:
                return
            self.set_phase("paused")

    def _handle_commands(self, state: TrainerState) -> tuple[ControlCommand | None, bool]:
        """Read queued commands; a pause blocks here until resume, stop, release or a checkpoint request.
        Returns the stop/release command (if any) and whether a checkpoint was asked for."""
        checkpoint = False
        while True:
            command = self.channel.get(timeout=PAUSE_POLL_S if self._paused_at is not None else None)
            if command is None:
                if self._paused_at is None or checkpoint:
                    return None, checkpoint
                continue
            if command.command == "pause" and self._paused_at is None:
                self._paused_at = time.monotonic()
                self.set_phase("paused")
                self.on_pause_change(True)
                self.emitter.emit(
                    Paused,
                    step=state.global_step,
                    released=False,
                    reason=str(command.args.get("reason", "user")),
                )
            elif command.command == "resume" and self._paused_at is not None:
                self._paused_s += time.monotonic() - self._paused_at
                self._paused_at = None
                self.set_phase("training")
                self.on_pause_change(False)
                self.emitter.emit(Resumed, step=state.global_step)
            elif command.command in {"stop", "pause_release"}:
                return command, checkpoint
            elif command.command == "checkpoint":
                checkpoint = True

    def _eta(self, state: TrainerState) -> tuple[float | None, tuple[float, float] | None]:
        if not self._step_times:
            return None, None
        remaining = max(0, state.max_steps - state.global_step)
        times = sorted(self._step_times)
        median = times[len(times) // 2]
        return remaining * median, (remaining * times[0], remaining * times[-1])


class HardestExamplesCallback(TrainerCallback):
    """After each evaluation, scores every held-out example (up to score_examples_limit) and emits the
    `hardest_top_n` the model fits worst as a `hardest` event, so broken rows show while the run goes on.
    Commands are taken between batches, as during the evaluation itself."""

    def __init__(
        self,
        held_out: TokenizedSplit,
        tokenizer: PreTrainedTokenizerBase,
        config: TrainConfig,
        emitter: EventEmitter,
        set_phase: Callable[[str], None],
        between_steps: Callable[[TrainerState], None],
    ) -> None:
        self.held_out = held_out
        self.tokenizer = tokenizer
        self.top_n = config.hardest_top_n
        self.max_length = config.max_length
        self.positions = pick_positions(len(held_out.data), config.score_examples_limit, config.seed)
        self.emitter = emitter
        self.set_phase = set_phase
        self.between_steps = between_steps

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: Any = None,
        **kwargs: Any,
    ) -> None:
        if model is None:
            return

        def between_batches() -> None:
            self.between_steps(state)
            self.set_phase("evaluating")

        self.set_phase("evaluating")
        losses = score_examples(
            model,
            self.held_out.data,
            self.positions,
            max_length=self.max_length,
            token_budget=args.per_device_eval_batch_size * self.max_length,  # follows an out-of-memory retry
            pad_id=pad_token_id(self.tokenizer),
            between_batches=between_batches,
        )
        top = sorted(losses, key=lambda item: item.loss, reverse=True)[: self.top_n]
        texts = render(self.tokenizer, self.held_out.data, [item.position for item in top], self.max_length)
        self.emitter.emit(
            HardestExamples,
            step=state.global_step,
            split="eval",
            examples=[
                {
                    "fingerprint": self.held_out.fingerprints[item.position],
                    "loss": round(item.loss, 5),
                    "tokens": item.tokens,
                    "preview": preview(text),
                }
                for item, text in zip(top, texts, strict=True)
            ],
        )
        self.set_phase("training")


def rewards(logs: dict[str, Any], prefix: str = "") -> dict[str, float | None]:
    """Reward margin and accuracy as TRL's DPO and ORPO trainers log them (None for other objectives)."""
    return {
        "reward_margin": _float(logs.get(f"{prefix}rewards/margins")),
        "reward_accuracy": _float(logs.get(f"{prefix}rewards/accuracies")),
    }


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)
