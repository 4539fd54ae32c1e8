"""The training worker: `python -m studio.engine.training.worker RUN_DIR` trains one run and exits.

It reads RUN_DIR/config.json, streams events as JSON lines on stdout and into RUN_DIR/events.jsonl, takes
control commands from stdin and RUN_DIR/control/, and resumes from the newest good checkpoint when the run
has one. Exit codes are studio.engine.errors.ExitCode: 0 done (or released for a later resume),
1 error, 2 dataset unusable, 3 out of memory, 4 model not found, 130 stopped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from studio.engine import runs
from studio.engine.config import TrainConfig
from studio.engine.control import ControlCommand
from studio.engine.errors import ExitCode, StudioError
from studio.engine.events import Anomaly, Completed, Error, Heartbeat, Paused, Resumed, Started, Stopped
from studio.engine.registry import Registry
from studio.engine.training import checkpoints
from studio.engine.training.control_channel import ControlChannel
from studio.engine.training.faults import active_faults
from studio.engine.training.signals import StopHandlers, StoppedBeforeTraining
from studio.engine.training.sinks import EventEmitter, EventSink, FileSink, StreamSink, last_seq

if TYPE_CHECKING:
    from studio.engine.training.data import TrainingData

HEARTBEAT_S = 10.0
ANSWER_POLL_S = 0.25


class Heartbeats:
    """Emits a heartbeat every few seconds, whatever the worker is doing (a CPU step can take minutes),
    so the supervisor can tell a slow worker from a frozen one; `phase` says what it is busy with."""

    def __init__(self, emitter: EventEmitter, interval: float = HEARTBEAT_S) -> None:
        self._emitter = emitter
        self._interval = interval
        self.phase = "starting"
        self._stop = threading.Event()
        threading.Thread(target=self._beat, name="heartbeat", daemon=True).start()

    def set_phase(self, phase: str) -> None:
        self.phase = phase

    def _beat(self) -> None:
        """Beat until closed, whatever goes wrong: a failed write (a full disk) ends this beat, not the thread.
        The event reached the other sinks (stdout); the training thread meets the failure on its next event."""
        while not self._stop.wait(self._interval):
            try:
                self._emitter.emit(Heartbeat, phase=self.phase)
            except Exception as exc:  # a dead heartbeat would make a live worker look frozen
                _log_stderr(f"heartbeat not recorded: {type(exc).__name__}: {exc}\n")

    def close(self) -> None:
        self._stop.set()


def run_worker(
    run_dir: Path, sinks: list[EventSink], stdin: TextIO | None = None, handle_signals: bool = False
) -> int:
    """Train the run in `run_dir`; returns the exit code. Every failure becomes an `error` event."""
    run_id = run_dir.name
    emitter = EventEmitter(run_id, sinks, start_seq=last_seq(runs.events_file(run_dir)))
    channel = ControlChannel(run_dir, stdin)
    stops = StopHandlers(channel)
    if handle_signals:
        stops.install()
    beats = Heartbeats(emitter)
    registry = Registry()
    config: TrainConfig | None = None
    try:
        config = runs.load_run_config(run_dir)
        _ensure_registered(registry, run_id, run_dir, config)
        registry.mark_running(run_id)
        try:
            return _train(run_dir, config, emitter, channel, beats, registry, stops.training_started)
        except StoppedBeforeTraining as stop:
            return _stopped_before_training(emitter, registry, run_dir, stop.reason)
    except StudioError as error:
        return _fail(emitter, registry, run_id, error)
    except Exception as exc:
        from studio.engine.training.disk import is_disk_full
        from studio.engine.training.oom import is_out_of_memory, out_of_memory_error

        if is_disk_full(exc, run_dir):
            return _fail(emitter, registry, run_id, _disk_full(run_dir, config, exc))
        if config is not None and is_out_of_memory(exc):
            return _fail(emitter, registry, run_id, out_of_memory_error(config))
        log = _write_error_log(run_dir, traceback.format_exc())
        return _fail(
            emitter,
            registry,
            run_id,
            StudioError(
                what="Training stopped because of an unexpected problem.",
                why=f"{type(exc).__name__}: {exc}",
                actions=[
                    f"Look at the details in {log}." if log else "Look at the details in the worker's error output.",
                    "Resume the run: `studio resume " + run_id + "`.",
                    "If it happens again, report it with that file attached.",
                ],
                code="internal_error",
            ),
        )
    finally:
        beats.close()
        channel.close()
        emitter.close()


def _ensure_registered(registry: Registry, run_id: str, run_dir: Path, config: TrainConfig) -> None:
    """A run dir prepared by hand (or by a test) still shows up in `studio runs`."""
    if registry.get(run_id) is None:
        registry.create_run(run_id, run_id, config, run_dir)


def _fail(emitter: EventEmitter, registry: Registry, run_id: str, error: StudioError) -> int:
    """Report the error and mark the run failed; on a full disk either write may fail, and neither may hide the
    error: stdout still carries the event, and a row left "running" becomes "interrupted" once this worker is
    gone (Registry.reconcile)."""
    try:
        emitter.emit(
            Error,
            code=error.code,
            message=error.what,
            hint=error.why,
            actions=list(error.actions),
            exit_code=int(error.exit_code),
        )
    except OSError as exc:  # events.jsonl could not take it; the other sinks did
        _log_stderr(f"error event not recorded in events.jsonl: {exc}\n")
    try:
        registry.mark_finished(run_id, "failed", int(error.exit_code))
    except (sqlite3.Error, OSError) as exc:
        _log_stderr(f"run not marked failed in the registry: {exc}\n")
    return int(error.exit_code)


def _disk_full(run_dir: Path, config: TrainConfig | None, exc: BaseException) -> StudioError:
    """The `disk_full` error for a write that found the disk full, with the planner's estimate of what the run
    needs. The checkpoint the Trainer was writing is removed (it was never sealed, and its space is what the
    user needs); sealed checkpoints stay."""
    for partial in runs.trainer_staging_dir(run_dir).glob("checkpoint-*"):
        shutil.rmtree(partial, ignore_errors=True)
    from studio.engine.training.disk import disk_full_error, run_disk_needed

    _log_stderr(f"disk full: {type(exc).__name__}: {exc}\n")
    needed = None
    if config is not None:
        with contextlib.suppress(Exception):  # the advice is a bonus; the error must go out
            needed = run_disk_needed(config, _resolve_model(config.base_model), run_dir)
    return disk_full_error(run_dir, run_dir.name, needed)


def _write_error_log(run_dir: Path, details: str) -> Path | None:
    """Save a traceback in RUN_DIR/logs/worker-error.log; None when it cannot be written (a full disk), so the
    error event goes out all the same (with the details on stderr)."""
    log = runs.logs_dir(run_dir) / "worker-error.log"
    try:
        log.write_text(details, encoding="utf-8")
        return log
    except OSError:
        _log_stderr(details)
        return None


def _log_stderr(text: str) -> None:
    """A note for RUN_DIR/logs/worker.stderr.log, which may itself be on the full disk."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(text)
        sys.stderr.flush()


def _train(
    run_dir: Path,
    config: TrainConfig,
    emitter: EventEmitter,
    channel: ControlChannel,
    beats: Heartbeats,
    registry: Registry,
    on_training: Callable[[], None],
) -> int:
    from studio.engine.anomalies import AnomalyMonitor
    from studio.engine.anomalies.callback import AnomalyCallback
    from studio.engine.training.backends.base import check_method_supported, device_type
    from studio.engine.training.backends.hf import build_trainer
    from studio.engine.training.callbacks import HardestExamplesCallback, StudioCallback, TrainingInterrupted
    from studio.engine.training.disk import check_free_space, run_disk_needed
    from studio.engine.training.distributed import anomaly_mode_for, world_size
    from studio.engine.training.lockstep import Lockstep
    from studio.engine.training.oom import free_memory, is_out_of_memory
    from studio.engine.training.scoring import score_after_training

    started_at = time.monotonic()
    device = device_type()
    check_method_supported(config, device)
    backend, backend_reason = select_backend(config)

    beats.set_phase("loading_model")
    emitter.emit(Heartbeat, phase="loading_model", message="Loading the model")
    model_path = _resolve_model(config.base_model)
    check_free_space(run_dir, run_dir.name, run_disk_needed(config, model_path, run_dir))  # before the long load
    model, tokenizer = backend.load(config, model_path)
    time.sleep(active_faults().get_float("sleep_while_loading") or 0.0)

    beats.set_phase("preparing_data")
    emitter.emit(Heartbeat, phase="preparing_data", message="Preparing the dataset")
    data = load_training_splits(config, model_path, tokenizer)
    train_set, eval_set = data.train.data, data.held_out.data if data.held_out else None

    beats.set_phase("building_trainer")
    _seed(config.seed)
    model = backend.apply_adapter(model, config)
    anomaly_mode = anomaly_mode_for(config.anomaly_mode, world_size())
    if anomaly_mode != config.anomaly_mode:
        emitter.emit(
            Heartbeat,
            phase="building_trainer",
            message=f"Training on {world_size()} processes: Studio will report problems but not fix them "
            "automatically (its fixes would reach only one process).",
        )
    anomaly_cb = AnomalyCallback(
        AnomalyMonitor(),
        emitter.forward,
        anomaly_mode,
        run_id=run_dir.name,
        choose=_ask_user(run_dir.name, emitter, channel, beats, registry),
    )
    callback = StudioCallback(
        config,
        run_dir,
        emitter,
        channel,
        active_faults(),
        beats.set_phase,
        on_pause_change=lambda paused: registry.set_status(run_dir.name, "paused" if paused else "running"),
        save_reason=anomaly_cb.save_reason,
        lockstep=Lockstep(),
    )
    hardest_cb = None
    if config.hardest_top_n and data.held_out is not None and world_size() == 1 and config.objective == "sft":
        # Only a single process may score on its own: on several, a step outside the lockstep would hang them.
        hardest_cb = HardestExamplesCallback(
            data.held_out, tokenizer, config, emitter, beats.set_phase, callback.between_steps
        )
    callbacks = build_callbacks(callback, anomaly_cb, hardest_cb)

    def new_trainer(model: Any) -> Any:
        built = build_trainer(
            model,
            tokenizer,
            train_set,
            eval_set,
            backend.trainer_config(callback.config),
            runs.trainer_staging_dir(run_dir),
            callbacks,
        )
        callback.trainer = built
        return built

    def fresh_model() -> Any:
        """The base model with a new adapter, for a retry that has no good checkpoint to resume from."""
        _seed(config.seed)
        base, _ = backend.load(callback.config, model_path)
        return backend.apply_adapter(base, callback.config)

    trainer = new_trainer(model)

    def on_damaged(info: checkpoints.CheckpointInfo, problem: str) -> None:
        emitter.emit(
            Anomaly,
            anomaly="damaged_checkpoint",
            severity="warning",
            step=info.step,
            message=f"The checkpoint at step {info.step} cannot be used: {problem}. "
            "Studio uses the one before it.",
            evidence={"path": str(info.path), "problem": problem},
            actions=["Nothing to do: training continues from the previous checkpoint."],
        )

    resume = checkpoints.latest_good(run_dir, on_damaged)
    emitter.emit(
        Started,
        config=config.model_dump(mode="json"),
        backend=backend.name,
        device=device,
        model=str(model_path),
        train_examples=len(train_set),
        eval_examples=len(eval_set) if eval_set else 0,
        total_steps=_total_steps(trainer),
        resumed_from_step=resume.step if resume else None,
        extra={
            "backend_reason": backend_reason,
            "pid": os.getpid(),
            "packing": bool(getattr(trainer.args, "packing", False)),  # SFT's own settings
            "padding_free": bool(getattr(trainer.args, "padding_free", False)),
            "excluded_examples": data.excluded,
        },
    )
    restored: int | None = None
    on_training()  # from here a stop finishes the step and checkpoints
    while True:
        beats.set_phase("training")
        try:
            trainer.train(resume_from_checkpoint=str(resume.path) if resume else None)
        except TrainingInterrupted as stop:
            callback.lockstep.finish()  # the loop has ended on every rank: close the process group together
            step = stop.checkpoint.step if stop.checkpoint else trainer.state.global_step
            path = str(stop.checkpoint.path) if stop.checkpoint else None
            if stop.outcome == "released":
                emitter.emit(Paused, step=step, released=True, reason=stop.reason)
                registry.mark_finished(
                    run_dir.name, "paused", int(ExitCode.OK), peak_memory=int(callback.peak_rss)
                )
                return int(ExitCode.OK)
            return _stopped(emitter, registry, run_dir, callback, step, path, stop.reason)
        except Exception as exc:
            if not is_out_of_memory(exc) or anomaly_cb.guard is None:
                raise
            step = trainer.state.global_step
            trainer = callback.trainer = None  # drop the failed step's tensors before freeing memory
            free_memory()
            callback.config = _retry_smaller(anomaly_cb, callback.config, step, exc)
            resume = checkpoints.latest_good(run_dir, on_damaged)
            trainer = new_trainer(model if resume or step == 0 else fresh_model())
            continue
        actions = {action.kind: action for action in anomaly_cb.take_recovery()}
        step = trainer.state.global_step
        if "stop_training" in actions:
            callback.lockstep.finish()
            anomaly_cb.applied(actions["stop_training"], step)
            good = checkpoints.latest_good(run_dir)
            return _stopped(emitter, registry, run_dir, callback, step, str(good.path) if good else None, "anomaly")
        if "early_stop_restore_best" in actions:
            restored = _restore_best(trainer, run_dir)
            anomaly_cb.applied(actions["early_stop_restore_best"], step, restored_step=restored)
            break
        if "rollback_and_halve_lr" not in actions:
            break
        # Resuming reloads the adapter weights, so the damaged model object can be reused.
        resume = checkpoints.latest_good(run_dir, on_damaged)
        trainer = callback.trainer = None
        trainer = new_trainer(model if resume else fresh_model())
        anomaly_cb.applied(actions["rollback_and_halve_lr"], step, restored_step=resume.step if resume else 0)

    callback.lockstep.finish()  # no collective after the loop: the followers close the process group with us
    beats.set_phase("saving")
    if callback.early_stopped:
        restored = _restore_best(trainer, run_dir)
    from studio.engine.training.final_adapter import save_final_adapter

    adapter_dir = save_final_adapter(trainer.model, tokenizer, run_dir)  # staged, with a manifest, then renamed
    metrics = _final_metrics(trainer, callback, time.monotonic() - started_at, restored)
    if config.objective == "sft":  # per-example losses measure how well answers are imitated, not preferred
        metrics.update(
            score_after_training(
                run_dir, callback.config, trainer, tokenizer, data, emitter, channel, beats.set_phase, registry
            )
        )
    verdict = _verdict(run_dir, trainer.state.global_step)
    metrics.update(
        summary=verdict.headline,
        trustworthy=verdict.trustworthy,
        anomalies=verdict.anomalies,
        recoveries=verdict.recoveries,
    )
    emitter.emit(
        Completed,
        step=trainer.state.global_step,
        adapter_path=str(adapter_dir),
        metrics=metrics,
        summary=f"{verdict.headline} {_summary(metrics)}",
    )
    registry.mark_finished(
        run_dir.name, "completed", int(ExitCode.OK), metrics=metrics, peak_memory=int(metrics["peak_rss"])
    )
    return int(ExitCode.OK)


def _stopped(
    emitter: EventEmitter,
    registry: Registry,
    run_dir: Path,
    callback: Any,
    step: int,
    checkpoint_path: str | None,
    reason: str,
) -> int:
    emitter.emit(Stopped, step=step, checkpoint_path=checkpoint_path, reason=reason)
    registry.mark_finished(run_dir.name, "stopped", int(ExitCode.STOPPED), peak_memory=int(callback.peak_rss))
    return int(ExitCode.STOPPED)


def _stopped_before_training(emitter: EventEmitter, registry: Registry, run_dir: Path, reason: str) -> int:
    """A stop during set-up: nothing new to save; the run keeps the checkpoints it had and resumes from them."""
    good = checkpoints.latest_good(run_dir)
    emitter.emit(
        Stopped, step=good.step if good else 0, checkpoint_path=str(good.path) if good else None, reason=reason
    )
    registry.mark_finished(run_dir.name, "stopped", int(ExitCode.STOPPED))
    return int(ExitCode.STOPPED)


def _retry_smaller(anomaly_cb: Any, config: TrainConfig, step: int, exc: Exception) -> TrainConfig:
    """The anomaly guard's answer to an out-of-memory error: the config for the retry (same effective batch),
    or exit 3 with advice once the retries are used up (or when the mode does not retry)."""
    from studio.engine.anomalies import oom_exhausted_error

    guard = anomaly_cb.guard
    guard.observe_oom(step, str(exc))
    anomaly_cb.settle()
    actions = {action.kind: action for action in guard.take_pending()}
    retry = actions.get("reduce_batch_for_oom")
    if retry is None:
        if "stop_training" in actions:
            anomaly_cb.applied(actions["stop_training"], step)
            state = guard.state
            raise oom_exhausted_error(state.micro_batch, state.accumulation, state.oom_retries) from exc
        raise exc
    anomaly_cb.applied(retry, step)
    return config.updated(
        micro_batch_size=int(retry.params["new_micro_batch"]),
        gradient_accumulation=int(retry.params["new_accumulation"]),
    )


def _ask_user(
    run_id: str, emitter: EventEmitter, channel: ControlChannel, beats: Heartbeats, registry: Registry
) -> Callable[[Any], str]:
    """"ask" mode: pause the run, wait for the user's `anomaly_action`, and hand back its key."""

    def choose(decision: Any) -> str:
        emitter.emit(Paused, step=decision.step, released=False, reason="anomaly")
        beats.set_phase("paused")
        registry.set_status(run_id, "paused")
        try:
            return _await_choice(channel)
        finally:
            registry.set_status(run_id, "running")
            beats.set_phase("training")
            emitter.emit(Resumed, step=decision.step)

    return choose


def _await_choice(channel: ControlChannel) -> str:
    """The first `anomaly_action` naming a key of ACTION_LABELS (a `stop` answers "stop"); other commands
    wait in the channel until the question is settled."""
    from studio.engine.anomalies import ACTION_LABELS

    deferred: list[ControlCommand] = []
    try:
        while True:
            command = channel.get(timeout=ANSWER_POLL_S)
            if command is None:
                continue
            if command.command == "stop":
                return "stop"
            if command.command != "anomaly_action":
                deferred.append(command)
            elif command.args.get("action") in ACTION_LABELS:
                return str(command.args["action"])
            else:
                sys.stderr.write(f"ignored an anomaly_action with an unknown action: {command.args}\n")
    finally:
        for command in deferred:
            channel.put(command)


def _verdict(run_dir: Path, step: int) -> Any:
    """The post-run summary from everything this run recorded (earlier workers included), as completed."""
    from studio.engine.anomalies import summarize_run
    from studio.engine.anomalies.summary import read_events

    events_file = runs.events_file(run_dir)
    recorded = read_events(events_file) if events_file.exists() else []
    return summarize_run([*recorded, Completed(run_id=run_dir.name, step=step)])


def build_callbacks(studio_callback: Any, anomaly_callback: Any, hardest_callback: Any | None = None) -> list[Any]:
    """Every TrainerCallback of a run, in order: Studio's events/control/checkpoints first, then the hardest
    examples after each evaluation (when on), then observers of the metrics stream (the anomaly guard, which
    may ask for a checkpoint or end the loop), and last the lockstep that hands the flags they set to the
    other ranks of a distributed run."""
    from studio.engine.training.lockstep import LockstepCallback

    extra = [hardest_callback] if hardest_callback is not None else []
    return [studio_callback, *extra, anomaly_callback, LockstepCallback(studio_callback.lockstep)]


def select_backend(config: TrainConfig) -> tuple[Any, str]:
    """The backend object and the reason it was chosen (studio.engine.backend_choice decides)."""
    from studio.engine.backend_choice import choose_backend, unsloth_installed
    from studio.engine.hardware import probe

    choice = choose_backend(probe(), config.backend, unsloth_installed())
    if choice.name == "unsloth":
        from studio.engine.training.backends.unsloth import UnslothBackend

        return UnslothBackend(), choice.reason
    from studio.engine.training.backends.hf import HFBackend

    return HFBackend(), choice.reason


def _resolve_model(ref: str) -> Path:
    from studio.engine.models.resolve import resolve_model

    return resolve_model(ref)


def load_training_data(config: TrainConfig, model_path: Path, tokenizer: Any) -> tuple[Any, Any]:
    """The tokenized train and held-out datasets as the Trainer takes them (held-out None when there is none)."""
    data = load_training_splits(config, model_path, tokenizer)
    return data.train.data, data.held_out.data if data.held_out else None


def load_training_splits(config: TrainConfig, model_path: Path, tokenizer: Any) -> TrainingData:
    """The prepared train/eval splits (studio.engine.datasets), tokenized with assistant-only masks (preference
    data stays conversational: TRL's preference trainers tokenize it themselves), without the examples the
    config excludes. Exclusion comes after preparation (whose cache and split it leaves alone), so
    every other example keeps its split and its row number."""
    from studio.engine.training.data import TrainingData, check_objective, tokenize_split

    if not config.dataset_path:
        raise StudioError(
            what="No training data was given.",
            why="The run's configuration has no dataset_path.",
            actions=["Pass a file: `studio train --dataset FILE`."],
            code="dataset_missing",
            exit_code=ExitCode.DATASET_UNUSABLE,
        )
    prepared = prepare_for_config(config, model_path)
    check_objective(config.objective, prepared.train.column_names)
    exclude = frozenset(config.exclude_examples)
    if config.objective == "sft":
        train = tokenize_split(prepared.train, tokenizer, config.assistant_only_loss, exclude)
        held = tokenize_split(prepared.eval, tokenizer, config.assistant_only_loss, exclude) if prepared.eval else None
    else:
        train, held = _preference_splits(config, prepared, exclude)
    excluded = train.excluded + (held.excluded if held else 0)
    if len(train.data) == 0:
        raise StudioError(
            what="None of the examples can be trained on.",
            why="After formatting, no example has an answer for the model to learn."
            + (f" ({excluded} were excluded by the settings.)" if excluded else ""),
            actions=[
                "Run `studio validate FILE` to see what Studio reads in the file.",
                "Check that the answers are in the column Studio uses for them.",
            ],
            code="dataset_empty",
            exit_code=ExitCode.DATASET_UNUSABLE,
        )
    return TrainingData(train=train, held_out=held if held is not None and len(held.data) else None, excluded=excluded)


def _preference_splits(config: TrainConfig, prepared: Any, exclude: frozenset[str]) -> tuple[Any, Any]:
    """The prepared pairs as TRL's preference trainers take them; KTO learns from pairs split into one good
    and one bad answer (TRL's own unpair_preference_dataset)."""
    from studio.engine.training.data import TokenizedSplit, preference_split

    def split(dataset: Any) -> TokenizedSplit:
        found = preference_split(dataset, exclude)
        if config.objective != "kto" or "label" in dataset.column_names:
            return found
        from trl.data_utils import unpair_preference_dataset

        return TokenizedSplit(
            data=unpair_preference_dataset(found.data),
            rows=[row for row in found.rows for _ in range(2)],
            fingerprints=[fingerprint for fingerprint in found.fingerprints for _ in range(2)],
            excluded=found.excluded,
        )

    return split(prepared.train), split(prepared.eval) if prepared.eval else None


def prepare_for_config(config: TrainConfig, model_path: Path) -> Any:
    """The run's dataset prepared (and cached) exactly as its config asks; shared with `studio train --dry-run`."""
    from studio.engine.datasets import prepare_dataset

    return prepare_dataset(
        config.dataset_path or "",
        mapping=config.column_mapping,
        eval_fraction=config.eval_fraction,
        seed=config.seed,
        tokenizer_path=model_path,
        max_length=config.max_length,
        profile=config.profile,
    )


def _seed(seed: int) -> None:
    from transformers import set_seed

    set_seed(seed)


def _total_steps(trainer: Any) -> int:
    """The optimizer steps the run will take, as the Trainer will compute them."""
    import math

    args = trainer.args
    if args.max_steps and args.max_steps > 0:
        return int(args.max_steps)
    batches = len(trainer.get_train_dataloader())
    per_epoch = max(1, math.ceil(batches / args.gradient_accumulation_steps))
    return math.ceil(per_epoch * args.num_train_epochs)


def _restore_best(trainer: Any, run_dir: Path) -> int | None:
    """Early stopping: put the best checkpoint's adapter weights back before saving the final adapter."""
    best = checkpoints.best(run_dir)
    if best is None:
        return None
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    weights = best.path / "adapter_model.safetensors"
    if not weights.exists():
        return None
    set_peft_model_state_dict(trainer.model, load_file(str(weights)))
    return best.step


def _final_metrics(trainer: Any, callback: Any, wall_s: float, restored_step: int | None) -> dict[str, Any]:
    import resource

    history = trainer.state.log_history
    losses = [entry["loss"] for entry in history if "loss" in entry]
    evals = [entry["eval_loss"] for entry in history if "eval_loss" in entry]
    peak_rss = max(callback.peak_rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0)
    metrics: dict[str, Any] = {
        "steps": trainer.state.global_step,
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "eval_loss": evals[-1] if evals else None,
        "best_eval_loss": min(evals) if evals else None,
        "tokens_seen": int(trainer.state.num_input_tokens_seen),
        "wall_s": round(wall_s, 2),
        "train_s": round(callback.active_s(), 2),
        "peak_rss": peak_rss,
        "early_stopped": callback.early_stopped,
        "restored_best_step": restored_step,
    }
    rewards = [entry for entry in history if "rewards/accuracies" in entry]
    if rewards:  # preference tuning (DPO, ORPO): where the last logged step left the pairs
        metrics["reward_accuracy"] = rewards[-1]["rewards/accuracies"]
        metrics["reward_margin"] = rewards[-1].get("rewards/margins")
    import torch

    if torch.cuda.is_available():
        metrics["peak_gpu"] = float(torch.cuda.max_memory_allocated())
    return metrics


def _summary(metrics: dict[str, Any]) -> str:
    parts = [f"Trained {metrics['steps']} steps"]
    if metrics["first_loss"] is not None and metrics["final_loss"] is not None:
        parts.append(f"loss {metrics['first_loss']:.3f} → {metrics['final_loss']:.3f}")
    if metrics["eval_loss"] is not None:
        parts.append(f"held-out loss {metrics['eval_loss']:.3f}")
    if metrics.get("reward_accuracy") is not None:
        parts.append(f"the chosen answer preferred in {metrics['reward_accuracy']:.0%} of the last pairs")
    if metrics["restored_best_step"] is not None:
        parts.append(f"best state from step {metrics['restored_best_step']} restored")
    return "; ".join(parts) + "."


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m studio.engine.training.worker RUN_DIR\n")
        return int(ExitCode.ERROR)
    run_dir = Path(args[0]).resolve()
    from studio.engine.training.distributed import is_main_process, run_follower

    if not is_main_process():  # under `accelerate launch`, rank 0 alone speaks for the run
        try:
            return run_follower(run_dir)
        except StoppedBeforeTraining:  # rank 0 ends as well, with the `stopped` event
            return int(ExitCode.STOPPED)
    # Keep the event stream clean: libraries that print (even from C) write to stderr instead of stdout.
    events_out = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8", buffering=1)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    sys.stdout = sys.stderr
    code = run_worker(
        run_dir,
        [StreamSink(events_out), FileSink(runs.events_file(run_dir))],
        stdin=sys.stdin,
        handle_signals=True,
    )
    events_out.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
