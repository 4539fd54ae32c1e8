"""The hardest-examples report: every example's loss under the trained model, worst first.

Mislabeled, swapped or broken rows are the ones a model fits worst once it has learned the rest, so they
rise to the top. The worker writes RUN_DIR/hardest.json after training (`score_examples`); `score_run` builds
it for a run that has none. An example is named by its fingerprint, which `next_version_config` puts into
`exclude_examples`, so the next version trains without it. See docs/hardest-examples.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.engine.errors import StudioError
from studio.engine.events import now_iso
from studio.engine.training.data import example_fingerprint
from studio.engine.training.example_loss import ScoringCancelled, pad_token_id, pick_positions, render, score_examples

if TYPE_CHECKING:
    from studio.engine.config import TrainConfig
    from studio.engine.training.data import TokenizedSplit

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

REPORT_FILE = "hardest.json"
REPORT_VERSION = 1
SORT_KEYS = ("loss", "tokens", "index", "split", "fingerprint")

Progress = Callable[[str, float], None]


@dataclass(frozen=True)
class ScoredExample:
    split: str  # "train" or "eval"
    index: int  # row of that split as prepared (before exclusions), stable across versions of a run
    fingerprint: str
    loss: float  # mean per trained token
    tokens: int  # trained tokens
    text: str  # the example as the model saw it (chat template applied, cut to max_length)


@dataclass(frozen=True)
class HardestReport:
    run_id: str
    step: int
    examples: list[ScoredExample]  # highest loss first
    splits: dict[str, dict[str, int]]  # {"train": {"scored": n, "total": m}, "eval": {...}}
    created_at: str = ""

    def top(self, n: int, split: str | None = None) -> list[ScoredExample]:
        """The `n` examples with the highest loss, of one split or of all."""
        return [e for e in self.sorted_by("loss") if split is None or e.split == split][: max(n, 0)]

    def sorted_by(self, key: str, descending: bool = True) -> list[ScoredExample]:
        """All examples ordered by one of SORT_KEYS (ties keep the loss order)."""
        if key not in SORT_KEYS:
            raise ValueError(f"cannot sort by {key!r}; use one of {', '.join(SORT_KEYS)}")
        by_loss = sorted(self.examples, key=lambda e: e.loss, reverse=True)
        return sorted(by_loss, key=lambda e: getattr(e, key), reverse=descending)

    def cut_splits(self) -> dict[str, dict[str, int]]:
        """The splits of which only part was scored (score_examples_limit)."""
        return {name: counts for name, counts in self.splits.items() if counts["scored"] < counts["total"]}

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "run_id": self.run_id,
            "step": self.step,
            "created_at": self.created_at,
            "splits": self.splits,
            "examples": [asdict(example) for example in self.examples],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HardestReport:
        examples = [
            ScoredExample(
                split=str(item["split"]),
                index=int(item["index"]),
                fingerprint=str(item["fingerprint"]),
                loss=float(item["loss"]),
                tokens=int(item["tokens"]),
                text=str(item["text"]),
            )
            for item in data["examples"]
        ]
        splits = {
            str(name): {"scored": int(counts["scored"]), "total": int(counts["total"])}
            for name, counts in data["splits"].items()
        }
        return cls(
            run_id=str(data["run_id"]),
            step=int(data["step"]),
            examples=sorted(examples, key=lambda e: e.loss, reverse=True),
            splits=splits,
            created_at=str(data.get("created_at", "")),
        )


# ---- the report file ----------------------------------------------------------------------------------


def save_report(run_dir: Path, report: HardestReport) -> Path:
    """Written to a temporary name and renamed, so a reader never sees half a report."""
    path = run_dir / REPORT_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report.to_dict(), ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
    return path


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


def score_split(
    model: Any,
    tokenizer: Any,
    split: TokenizedSplit,
    name: str,
    config: TrainConfig,
    *,
    progress: Callable[[float], None] | None = None,
    between_batches: Callable[[], None] | None = None,
) -> tuple[list[ScoredExample], dict[str, int]]:
    """Every example of one split (up to score_examples_limit of them) with its loss and rendered text, and
    the split's counts for the report. The worker and `score_run` both score through here."""
    positions = pick_positions(len(split.data), config.score_examples_limit, config.seed)
    losses = score_examples(
        model,
        split.data,
        positions,
        max_length=config.max_length,
        token_budget=config.micro_batch_size * config.max_length,
        pad_id=pad_token_id(tokenizer),
        progress=progress,
        between_batches=between_batches,
    )
    texts = render(tokenizer, split.data, [item.position for item in losses], config.max_length)
    examples = [
        ScoredExample(
            split=name,
            index=split.rows[item.position],
            fingerprint=split.fingerprints[item.position],
            loss=round(item.loss, 6),
            tokens=item.tokens,
            text=text,
        )
        for item, text in zip(losses, texts, strict=True)
    ]
    return examples, {"scored": len(examples), "total": len(split.data)}


def build_report(
    run_id: str, step: int, scored: dict[str, tuple[list[ScoredExample], dict[str, int]]]
) -> HardestReport:
    """The report from each split's `score_split` result."""
    examples = [example for split_examples, _counts in scored.values() for example in split_examples]
    return HardestReport(
        run_id=run_id,
        step=step,
        examples=sorted(examples, key=lambda e: e.loss, reverse=True),
        splits={name: counts for name, (_examples, counts) in scored.items()},
        created_at=now_iso(),
    )


def score_run(
    run_dir: Path,
    progress: Progress | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> HardestReport:
    """Build and save the report of a finished run that has none (an older run, or scoring was off): the base
    model with the run's final adapter, on the data prepared exactly as the worker prepared it."""
    from studio.engine.runs import final_adapter_dir, load_run_config
    from studio.engine.training.worker import load_training_splits

    report_progress = progress or (lambda _message, _fraction: None)
    config = load_run_config(run_dir)
    adapter = final_adapter_dir(run_dir)
    if not (adapter / "adapter_config.json").is_file():
        raise StudioError(
            what=f"{run_dir.name} has no trained adapter to score the examples with.",
            why=f"There is no final adapter in {adapter}; the run has not finished.",
            actions=[f"Finish it first: `studio resume {run_dir.name}`.", "Pick a completed run."],
            code="adapter_missing",
        )
    report_progress("Loading the model", 0.0)
    model, tokenizer, model_path = _load_trained(config, adapter)
    report_progress("Preparing the dataset", 0.05)
    data = load_training_splits(config, model_path, tokenizer)
    splits = [("eval", data.held_out), ("train", data.train)]
    sizes = {name: min(len(split.data), config.score_examples_limit) for name, split in splits if split}
    total = max(sum(sizes.values()), 1)

    def check() -> None:
        if should_cancel is not None and should_cancel():
            raise ScoringCancelled

    scored: dict[str, tuple[list[ScoredExample], dict[str, int]]] = {}
    done = 0
    try:
        for name, split in splits:
            if split is None:
                continue
            message = f"Scoring the {'held-out' if name == 'eval' else 'training'} examples"
            share = _share(report_progress, message, done, sizes[name], total)
            scored[name] = score_split(model, tokenizer, split, name, config, progress=share, between_batches=check)
            done += sizes[name]
    except ScoringCancelled:
        raise StudioError(
            what="Scoring the examples was cancelled.",
            why="Nothing was saved.",
            actions=["Start it again when you are ready."],
            code="cancelled",
        ) from None
    report = build_report(run_dir.name, _final_step(run_dir), scored)
    save_report(run_dir, report)
    report_progress("Done", 1.0)
    return report


def _share(report: Progress, message: str, offset: int, size: int, total: int) -> Callable[[float], None]:
    """One split's own progress as its share of the whole job (loading and preparing take the first tenth)."""
    return lambda fraction: report(message, 0.1 + 0.9 * (offset + fraction * size) / total)


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
    from studio.engine.runs import events_file

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
