"""The hardest-examples report's core: every example's loss under the trained model, worst first, and the file.

The worker's scoring (studio.engine.training.scoring) and `studio hardest` on an older run
(studio.engine.library.hardest.score_run) both score through `score_split` and write through `save_report`;
the library reads the file back with `load_report`. See docs/hardest-examples.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.engine.config import TrainConfig
from studio.engine.events import now_iso
from studio.engine.training.data import TokenizedSplit
from studio.engine.training.example_loss import pad_token_id, pick_positions, render, score_examples

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

REPORT_FILE = "hardest.json"
REPORT_VERSION = 1
SORT_KEYS = ("loss", "tokens", "index", "split", "fingerprint")


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


def save_report(run_dir: Path, report: HardestReport) -> Path:
    """Written to a temporary name and renamed, so a reader never sees half a report."""
    path = run_dir / REPORT_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report.to_dict(), ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
    return path


def score_split(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
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
