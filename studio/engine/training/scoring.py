"""After training: every example scored for the hardest-examples report, and the earlier version measured.

The recipe calls `score_after_training` once the final adapter is saved, so whatever happens here (a stop,
an adapter that cannot be compared, a failure) the run still completes with its adapter. The scores come
from studio.engine.training.example_loss, the same code as the live top N and `studio hardest`.
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.engine.config import TrainConfig
from studio.engine.events import Heartbeat
from studio.engine.progress import Cancelled
from studio.engine.runs.folders import logs_dir
from studio.engine.runs.registry import Registry
from studio.engine.training.control_channel import ControlChannel
from studio.engine.training.data import TokenizedSplit, TrainingData
from studio.engine.training.distributed import world_size
from studio.engine.training.example_loss import (
    mean_loss,
    pad_token_id,
    pick_positions,
    score_examples,
)
from studio.engine.training.hardest_report import ScoredExample, build_report, save_report, score_split
from studio.engine.training.sinks import EventEmitter

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase, Trainer

SCORING_REPORT_S = 2.0  # at most one scoring progress heartbeat this often
SCORING_MESSAGE = "Scoring each example for the hardest-examples report"
BASELINE_ADAPTER = "studio_baseline"


def score_after_training(
    run_dir: Path,
    config: TrainConfig,
    trainer: Trainer,
    tokenizer: PreTrainedTokenizerBase,
    data: TrainingData,
    emitter: EventEmitter,
    channel: ControlChannel,
    set_phase: Callable[[str], None],
    registry: Registry,
) -> dict[str, Any]:
    """The hardest-examples report and the earlier version's held-out loss, measured once the adapter is
    saved: a stop (or a failure) here ends the run as completed without them, never without its adapter.
    Returns what goes into the final metrics."""
    if not config.score_examples and not config.compare_adapter:
        return {}
    metrics: dict[str, Any] = {}
    if config.compare_adapter:
        metrics["baseline_eval_loss"] = None
    if world_size() > 1:
        emitter.emit(
            Heartbeat,
            phase="scoring",
            message="Trained on several processes: Studio scores no examples after such a run "
            f"(`studio hardest {run_dir.name}` builds the report on one).",
        )
        if config.compare_adapter:
            metrics["baseline_error"] = "Not measured: the run was trained on several processes."
        return metrics
    started = time.monotonic()
    set_phase("scoring")
    emitter.emit(Heartbeat, phase="scoring", message=SCORING_MESSAGE, fraction=0.0)
    reporter = _ScoringProgress(emitter, _sizes(config, data))
    try:
        _score_all(run_dir, config, trainer, tokenizer, data, registry, reporter, _stop_checker(channel), metrics)
    except Cancelled:
        emitter.emit(
            Heartbeat,
            phase="scoring",
            message="Scoring stopped as asked; the trained adapter is saved. "
            f"`studio hardest {run_dir.name}` builds the report later.",
        )
        if config.compare_adapter and metrics.get("baseline_eval_loss") is None:
            metrics.setdefault("baseline_error", "Not measured: the run was stopped before the comparison.")
    except Exception as exc:  # the run is trained and saved; a report that fails must not fail the run
        log = logs_dir(run_dir) / "scoring-error.log"
        log.write_text(traceback.format_exc(), encoding="utf-8")
        emitter.emit(
            Heartbeat,
            phase="scoring",
            message=f"Scoring the examples failed ({type(exc).__name__}); the trained adapter is saved. "
            f"Details in {log}.",
        )
        if config.compare_adapter and metrics.get("baseline_eval_loss") is None:
            metrics.setdefault("baseline_error", f"Not measured: scoring failed ({type(exc).__name__}: {exc}).")
    metrics["scoring_s"] = round(time.monotonic() - started, 2)
    return metrics


def _sizes(config: TrainConfig, data: TrainingData) -> dict[str, int]:
    """How many examples each part of the scoring phase scores (the progress fraction is shared by them)."""
    held, limit = data.held_out, config.score_examples_limit
    return {
        "eval": min(len(held.data), limit) if held else 0,
        "baseline": min(len(held.data), limit) if held and config.compare_adapter else 0,
        "train": min(len(data.train.data), limit) if config.score_examples else 0,
    }


def _stop_checker(channel: ControlChannel) -> Callable[[], None]:
    def between() -> None:
        """Stop or release: end scoring; other commands have nothing left to act on once training is over."""
        while (command := channel.get()) is not None:
            if command.command in {"stop", "pause_release"}:
                raise Cancelled()

    return between


def _score_all(
    run_dir: Path,
    config: TrainConfig,
    trainer: Trainer,
    tokenizer: PreTrainedTokenizerBase,
    data: TrainingData,
    registry: Registry,
    reporter: _ScoringProgress,
    between: Callable[[], None],
    metrics: dict[str, Any],
) -> None:
    """Score the held-out split, the earlier version and the training split, in that order, putting each
    result into `metrics` as soon as it is known (a stop or failure keeps what was measured before it)."""
    model, held = trainer.model, data.held_out
    scored: dict[str, tuple[list[ScoredExample], dict[str, int]]] = {}
    if held is not None:
        scored["eval"] = score_split(
            model, tokenizer, held, "eval", config, progress=reporter.part("eval"), between_batches=between
        )
        metrics["final_eval_loss"] = mean_loss(scored["eval"][0])
    if config.compare_adapter and held is not None:
        metrics.update(_baseline(model, tokenizer, held, config, registry, reporter.part("baseline"), between))
    if config.score_examples:
        scored["train"] = score_split(
            model, tokenizer, data.train, "train", config, progress=reporter.part("train"), between_batches=between
        )
        save_report(run_dir, build_report(run_dir.name, trainer.state.global_step, scored))


class _ScoringProgress:
    """Turns each part's own fraction into one fraction for the whole scoring phase, sent as heartbeats
    no more often than every SCORING_REPORT_S seconds."""

    def __init__(self, emitter: EventEmitter, sizes: dict[str, int]) -> None:
        self._emitter = emitter
        self._offsets: dict[str, int] = {}
        offset = 0
        for name, size in sizes.items():
            self._offsets[name] = offset
            offset += size
        self._sizes = sizes
        self._total = max(offset, 1)
        self._last = time.monotonic()

    def part(self, name: str) -> Callable[[float], None]:
        def report(fraction: float) -> None:
            now = time.monotonic()
            if now - self._last < SCORING_REPORT_S:
                return
            self._last = now
            overall = (self._offsets[name] + fraction * self._sizes[name]) / self._total
            self._emitter.emit(Heartbeat, phase="scoring", message=SCORING_MESSAGE, fraction=round(overall, 3))

        return report


def _baseline(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    held: TokenizedSplit,
    config: TrainConfig,
    registry: Registry,
    progress: Callable[[float], None],
    between: Callable[[], None],
) -> dict[str, Any]:
    """The earlier version's loss on the same held-out examples: its adapter is loaded beside the new one on
    the same base model, measured, and removed again. A problem becomes `baseline_error`, never a failure."""
    assert config.compare_adapter is not None
    folder = Path(config.compare_adapter).expanduser()
    problem = _baseline_problem(folder, config, model, registry)
    if problem:
        return {"baseline_error": problem}
    trained = model.active_adapter
    try:
        model.load_adapter(str(folder), adapter_name=BASELINE_ADAPTER)
    except Exception as exc:  # any loading failure (shapes, files, versions) is reported in plain words
        if BASELINE_ADAPTER in model.peft_config:  # half loaded: leave only the trained adapter behind
            model.delete_adapter(BASELINE_ADAPTER)
        model.set_adapter(trained)
        return {"baseline_error": f"The adapter to compare with could not be loaded ({type(exc).__name__}: {exc})."}
    try:
        model.set_adapter(BASELINE_ADAPTER)
        losses = score_examples(
            model,
            held.data,
            pick_positions(len(held.data), config.score_examples_limit, config.seed),
            max_length=config.max_length,
            token_budget=config.micro_batch_size * config.max_length,
            pad_id=pad_token_id(tokenizer),
            progress=progress,
            between_batches=between,
        )
    finally:
        model.set_adapter(trained)
        model.delete_adapter(BASELINE_ADAPTER)
    return {"baseline_eval_loss": mean_loss(losses)}


def _baseline_problem(folder: Path, config: TrainConfig, model: Any, registry: Registry) -> str | None:
    """Why the adapter in `folder` cannot be compared with this run, in plain words (None when it can)."""
    settings = folder / "adapter_config.json"
    if not settings.is_file():
        return f"The adapter to compare with was not found: {folder} has no adapter_config.json."
    try:
        declared = json.loads(settings.read_text(encoding="utf-8")).get("base_model_name_or_path")
    except (OSError, ValueError, AttributeError) as exc:
        return f"The adapter to compare with cannot be read ({settings}: {exc})."
    if not declared or declared == config.base_model:
        return None
    ours = str(getattr(model.get_base_model().config, "_name_or_path", ""))
    if ours and Path(declared).expanduser().resolve() == Path(ours).expanduser().resolve():
        return None
    owner = registry.adapter_owner(folder)
    if owner is not None and owner.base_model == config.base_model:
        return None
    return (
        f"The adapter to compare with was trained on another base model ({declared}), "
        f"so it cannot be measured on {config.base_model}."
    )
