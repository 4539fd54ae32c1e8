"""Is the tuned model actually better than its base? Loss and perplexity on the held-out split for both,
and for question-answer data exact match and token F1 of greedy answers against the references.

The held-out split is rebuilt with the training worker's own data pipeline (same seed, same fraction, same
assistant-only masks), so the numbers measure exactly the examples training never saw. The report is saved
as RUN_DIR/quality.json (+ quality.md) and `model_card_section` renders it for the model card.
"""

from __future__ import annotations

import json
import math
import re
import statistics
import string
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from studio.engine.errors import StudioError
from studio.engine.events import now_iso
from studio.engine.progress import QUIET, Cancelled, Span, TaskContext
from studio.engine.runs.registry import RunRecord

REPORT_FILE = "quality.json"
REPORT_MARKDOWN = "quality.md"
QA_PROFILES = frozenset({"qa"})
SHORT_ANSWER_TOKENS = 48  # median reference length up to which data counts as question-answer-like


@dataclass(frozen=True)
class LossScore:
    loss: float
    perplexity: float
    tokens: int


@dataclass(frozen=True)
class AnswerScore:
    exact_match: float
    token_f1: float
    examples: int


@dataclass(frozen=True)
class QualityReport:
    run_id: str
    created: str
    eval_examples: int
    base: LossScore | None
    tuned: LossScore | None
    qa_base: AnswerScore | None = None
    qa_tuned: AnswerScore | None = None
    samples: tuple[dict[str, str], ...] = ()

    @property
    def verdict(self) -> str:
        if self.base is None or self.tuned is None:
            return "Not enough held-out data to judge."
        change = (self.tuned.loss - self.base.loss) / self.base.loss if self.base.loss else 0.0
        if change < -0.02:
            return f"The tuned model fits the held-out data better than the base ({-change:.0%} lower loss)."
        if change > 0.02:
            return f"The tuned model fits the held-out data worse than the base ({change:.0%} higher loss)."
        return "The tuned model and the base model fit the held-out data about equally well."

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["samples"] = list(self.samples)
        data["verdict"] = self.verdict
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QualityReport:
        def part(kind: type, key: str) -> Any:
            value = data.get(key)
            return kind(**value) if isinstance(value, dict) else None

        return cls(run_id=data["run_id"], created=data["created"], eval_examples=int(data["eval_examples"]),
                   base=part(LossScore, "base"), tuned=part(LossScore, "tuned"),
                   qa_base=part(AnswerScore, "qa_base"), qa_tuned=part(AnswerScore, "qa_tuned"),
                   samples=tuple(data.get("samples") or ()))


# ---- answer metrics (SQuAD-style normalization) --------------------------------------------------------

def normalize_answer(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in string.punctuation)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


# ---- the check ------------------------------------------------------------------------------------------

def split_prompt_answer(input_ids: list[int], masks: list[int]) -> tuple[list[int], list[int]] | None:
    """The tokens before the first learned span (the prompt) and that span (the reference answer)."""
    if 1 not in masks or masks[0] == 1:
        return None
    start = masks.index(1)
    end = start
    while end < len(masks) and masks[end] == 1:
        end += 1
    return input_ids[:start], input_ids[start:end]


def evaluate_quality(run: RunRecord, max_examples: int = 64, qa_examples: int = 16,
                     task: TaskContext = QUIET) -> QualityReport:
    """Score base and tuned on up to `max_examples` held-out examples and save the report into the run."""
    import torch

    from studio.engine.library.loading import adapter_dir_of, attach_adapter, load_base, use
    from studio.engine.runs.folders import load_run_config
    from studio.engine.training.setup import load_training_data

    stop = Span(task, error=_cancelled)
    adapter = adapter_dir_of(run)
    config = load_run_config(run.run_dir)
    task.report("Loading the model", 0.05)
    loaded = load_base(config.base_model)
    attach_adapter(loaded, "tuned", adapter)
    task.report("Rebuilding the held-out split", 0.15)
    _train, held_out = load_training_data(config, loaded.model_path, loaded.tokenizer)
    if held_out is None or len(held_out) == 0:
        raise StudioError(
            what="This run has no held-out examples to check the model on.",
            why="It was trained with no share of the data kept aside (eval_fraction is 0), "
                "or the data was too small.",
            actions=["Train a new version with a held-out share of 5-10%.", "Use a larger dataset."],
            code="quality_no_eval",
        )
    rows = [held_out[i] for i in range(min(len(held_out), max_examples))]
    rows = [{"input_ids": r["input_ids"][: config.max_length],
             "assistant_masks": r["assistant_masks"][: config.max_length]} for r in rows]
    scores: dict[str | None, LossScore] = {}
    for index, name in enumerate((None, "tuned")):
        task.report(f"Scoring the {'base' if name is None else 'tuned'} model", 0.2 + 0.3 * index)
        with use(loaded, name), torch.no_grad():
            scores[name] = _loss(loaded.model, rows, stop)
    pairs = [p for p in (split_prompt_answer(r["input_ids"], r["assistant_masks"]) for r in rows) if p]
    qa_like = bool(pairs) and (config.profile in QA_PROFILES or
                               statistics.median(len(a) for _p, a in pairs) <= SHORT_ANSWER_TOKENS)
    qa: dict[str | None, AnswerScore] = {}
    samples: list[dict[str, str]] = []
    if qa_like:
        pairs = pairs[:qa_examples]
        answers: dict[str | None, list[str]] = {}
        for index, name in enumerate((None, "tuned")):
            who = "base" if name is None else "tuned"
            task.report(f"Answering with the {who} model", 0.8 + 0.1 * index)
            with use(loaded, name), torch.no_grad():
                answers[name] = _greedy(loaded, [prompt for prompt, _r in pairs],
                                        max(len(ref) for _p, ref in pairs) + 8, stop)
        refs = [loaded.tokenizer.decode(ref, skip_special_tokens=True).strip() for _p, ref in pairs]
        for name in (None, "tuned"):
            qa[name] = AnswerScore(
                exact_match=statistics.fmean(map(exact_match, answers[name], refs)),
                token_f1=statistics.fmean(map(token_f1, answers[name], refs)),
                examples=len(refs),
            )
        samples = [
            {"prompt": loaded.tokenizer.decode(prompt, skip_special_tokens=True).strip()[-300:],
             "reference": ref, "base": base, "tuned": tuned}
            for (prompt, _r), ref, base, tuned in list(zip(pairs, refs, answers[None], answers["tuned"],
                                                           strict=True))[:3]
        ]
    report = QualityReport(run.id, now_iso(), len(rows), scores[None], scores["tuned"],
                           qa.get(None), qa.get("tuned"), tuple(samples))
    save_report(run.run_dir, report)
    task.report("Done", 1.0)
    return report


def _loss(model: Any, rows: list[dict[str, list[int]]], stop: TaskContext) -> LossScore:
    """Mean loss per learned token (the same tokens training learned from), one example at a time."""
    import torch

    total, count = 0.0, 0
    for row in rows:
        stop.check()
        ids = torch.tensor([row["input_ids"]])
        labels = ids.clone()
        labels[0, torch.tensor(row["assistant_masks"]) == 0] = -100
        learned = int((labels[0, 1:] != -100).sum())  # the model predicts token t from tokens before it
        if learned == 0:
            continue
        out = model(input_ids=ids, labels=labels)
        total += float(out.loss) * learned
        count += learned
    loss = total / count if count else float("nan")
    return LossScore(loss=round(loss, 5), perplexity=round(math.exp(min(loss, 50.0)), 3), tokens=count)


def _greedy(loaded: Any, prompts: list[list[int]], max_new_tokens: int, stop: TaskContext) -> list[str]:
    """Greedy answers to all prompts in one left-padded batch (one forward pass per new token, not per row)."""
    import torch

    stop.check()
    tokenizer = loaded.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    width = max(len(prompt) for prompt in prompts)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    out = loaded.model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                max_new_tokens=max_new_tokens, pad_token_id=pad)
    return [str(tokenizer.decode(row[width:], skip_special_tokens=True)).strip() for row in out]


def _cancelled() -> Cancelled:
    return Cancelled(what="The quality check was cancelled.")


# ---- the report file ------------------------------------------------------------------------------------

def save_report(run_dir: Path, report: QualityReport) -> Path:
    path = run_dir / REPORT_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report.to_dict(), indent=2), encoding="utf-8")
    tmp.replace(path)
    (run_dir / REPORT_MARKDOWN).write_text(model_card_section(report), encoding="utf-8")
    return path


def load_report(run_dir: Path) -> QualityReport | None:
    try:
        return QualityReport.from_dict(json.loads((run_dir / REPORT_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def model_card_section(report: QualityReport) -> str:
    """Markdown for the model card's results: base vs tuned, in numbers and one sentence."""
    lines = ["## Quality check", "", report.verdict, "",
             f"Measured on {report.eval_examples} held-out examples the model never trained on.", "",
             "| | base model | tuned model |", "|---|---|---|"]
    if report.base and report.tuned:
        lines += [f"| loss | {report.base.loss:.4f} | {report.tuned.loss:.4f} |",
                  f"| perplexity | {report.base.perplexity:.2f} | {report.tuned.perplexity:.2f} |"]
    if report.qa_base and report.qa_tuned:
        lines += [f"| exact match | {report.qa_base.exact_match:.0%} | {report.qa_tuned.exact_match:.0%} |",
                  f"| token F1 | {report.qa_base.token_f1:.2f} | {report.qa_tuned.token_f1:.2f} |"]
    return "\n".join(lines) + "\n"
