"""The hardest-examples report: every example's loss under the trained model, worst first.

Mislabeled, swapped or broken rows are the ones a model fits worst once it has learned the rest, so they
rise to the top. The worker writes RUN_DIR/hardest.json after training (`score_examples`); `score_run` builds
it for a run that has none. An example is named by its fingerprint, which `next_version_config` puts into
`exclude_examples`, so the next version trains without it. See docs/hardest-examples.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.engine.errors import StudioError
from studio.engine.progress import QUIET, Cancelled, Span, TaskContext
from studio.engine.training.data import example_fingerprint
from studio.engine.training.hardest_report import (
    REPORT_FILE,
    REPORT_VERSION,
    HardestReport,
    ScoredExample,
    build_report,
    save_report,
    score_split,
)

if TYPE_CHECKING:
    from studio.engine.config import TrainConfig

__all__ = [
    "REPORT_FILE",
    "HardestReport",
    "ScoredExample",
    "example_fingerprint",
    "load_report",
    "next_version_config",
    "save_report",
    "score_run",
    "score_split",
]

# ---- the report file ----------------------------------------------------------------------------------


def load_report(run_dir: Path) -> HardestReport | None:
    """The run's report, or None when it has none yet."""
    path = run_dir / REPORT_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _damaged(path, run_dir.name, exc.strerror or str(exc)) from None
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError("the file does not hold a report")
        version = int(data.get("version", 0))
        if version > REPORT_VERSION:
            raise StudioError(
                what=f"The hardest-examples report of {run_dir.name} was written by a newer Studio.",
                why=f"It has layout version {version}; this Studio reads up to {REPORT_VERSION}.",
                actions=["Update Studio.", f"Or delete {path} and run `studio hardest {run_dir.name}` again."],
                code="hardest_report_newer",
            )
        return HardestReport.from_dict(data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise _damaged(path, run_dir.name, str(exc) or type(exc).__name__) from None


def _damaged(path: Path, run_id: str, why: str) -> StudioError:
    return StudioError(
        what=f"The hardest-examples report of {run_id} cannot be read.",
        why=f"{path} is damaged: {why}.",
        actions=[
            f"Delete {path} and run `studio hardest {run_id}` to build it again.",
            "The run itself and its adapter are not affected.",
        ],
        code="hardest_report_damaged",
    )


# ---- scoring ------------------------------------------------------------------------------------------


def score_run(run_dir: Path, task: TaskContext = QUIET) -> HardestReport:
    """Build and save the report of a finished run that has none (an older run, or scoring was off): the base
    model with the run's final adapter, on the data prepared exactly as the worker prepared it. A cancel
    saves nothing."""
    from studio.engine.runs.folders import final_adapter_dir, load_run_config
    from studio.engine.training.setup import load_training_splits

    steps = Span(task, error=_cancelled)
    config = load_run_config(run_dir)
    adapter = final_adapter_dir(run_dir)
    if not (adapter / "adapter_config.json").is_file():
        raise StudioError(
            what=f"{run_dir.name} has no trained adapter to score the examples with.",
            why=f"There is no final adapter in {adapter}; the run has not finished.",
            actions=[f"Finish it first: `studio resume {run_dir.name}`.", "Pick a completed run."],
            code="adapter_missing",
        )
    steps.report("Loading the model", 0.0)
    model, tokenizer, model_path = _load_trained(config, adapter)
    steps.report("Preparing the dataset", 0.05)
    data = load_training_splits(config, model_path, tokenizer)
    splits = [("eval", data.held_out), ("train", data.train)]
    sizes = {name: min(len(split.data), config.score_examples_limit) for name, split in splits if split}
    total = max(sum(sizes.values()), 1)
    scored: dict[str, tuple[list[ScoredExample], dict[str, int]]] = {}
    done = 0
    for name, split in splits:
        if split is None:
            continue
        message = f"Scoring the {'held-out' if name == 'eval' else 'training'} examples"
        part = steps.sub(0.1 + 0.9 * done / total, 0.1 + 0.9 * (done + sizes[name]) / total)
        shown = _reporting(part, message)
        scored[name] = score_split(model, tokenizer, split, name, config, progress=shown, between_batches=steps.check)
        done += sizes[name]
    report = build_report(run_dir.name, _final_step(run_dir), scored)
    save_report(run_dir, report)
    steps.report("Done", 1.0)
    return report


def _reporting(part: Span, message: str) -> Callable[[float], None]:
    return lambda fraction: part.report(message, fraction)


def _cancelled() -> Cancelled:
    return Cancelled(what="Scoring the examples was cancelled.", why="Nothing was saved.")


def _load_trained(config: TrainConfig, adapter: Path) -> tuple[Any, Any, Path]:
    """The base model loaded as training loaded it (precision, quantization), with the run's adapter on top."""
    from peft import PeftModel

    from studio.engine.models.resolve import resolve_model
    from studio.engine.training.backends.base import check_method_supported, device_type
    from studio.engine.training.backends.hf import HFBackend

    device = device_type()
    check_method_supported(config, device)
    model_path = resolve_model(config.base_model)
    base, tokenizer = HFBackend().load(config, model_path)
    model = PeftModel.from_pretrained(base, str(adapter))
    if config.quantization == "none":  # quantized weights are placed on the GPU as they load
        model.to(device)
    return model, tokenizer, model_path


def _final_step(run_dir: Path) -> int:
    """The step the run completed at, from its event record (0 when it says nothing)."""
    from studio.engine.runs.folders import events_file

    step = 0
    path = events_file(run_dir)
    if not path.exists():
        return step
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if '"completed"' not in line:
                continue
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") == "completed":
                step = int(event.get("step") or 0)
    return step


# ---- the next version ---------------------------------------------------------------------------------


def next_version_config(run_config: dict[str, Any] | TrainConfig, fingerprints: Iterable[str]) -> TrainConfig:
    """The run's settings for its next version: the same recipe without the chosen examples (added to
    `exclude_examples`, duplicates dropped, order kept), trained fresh (no adapter to start from or compare)."""
    from studio.engine.config import TrainConfig

    config = run_config if isinstance(run_config, TrainConfig) else TrainConfig.from_dict(dict(run_config))
    excluded = list(dict.fromkeys([*config.exclude_examples, *fingerprints]))
    return config.updated(exclude_examples=excluded, compare_adapter=None, init_adapter=None)
