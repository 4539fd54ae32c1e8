"""Is the tuned model actually better than its base? Held-out loss and perplexity for both, the metric that
fits the data's profile (exact match and token F1 for questions and answers, ROUGE-L for summaries, the
pass rate of the examples' own tests for code that ships them), compared example by example, and a plain
verdict: "Better than the base model on 41 of 50 held-out examples", with the examples that got worse.

The held-out split is rebuilt with the training worker's own data pipeline (same seed, same fraction, same
assistant-only masks), so the numbers measure exactly the examples training never saw. The report is saved
as RUN_DIR/quality.json (+ quality.md); older files without the per-example parts still load, and
`model_card_section` renders a report for the model card. An optional LLM judge (studio.engine.library.judge,
off by default) can add its own opinion.
"""

from __future__ import annotations

import json
import math
import re
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from studio.engine.errors import StudioError
from studio.engine.events import now_iso
from studio.engine.library.judge import JudgeResult, JudgeSettings
from studio.engine.library.metrics import (
    Outcome,
    Tally,
    compare_scores,
    exact_match,
    extract_code,
    normalize_answer,
    rouge_l,
    run_code_tests,
    tally,
    token_f1,
    verdict_sentence,
)
from studio.engine.progress import QUIET, Cancelled, Span, TaskContext
from studio.engine.runs.registry import RunRecord

__all__ = ["REPORT_FILE", "AnswerScore", "LossScore", "MetricScore", "QualityReport", "evaluate_quality",
           "exact_match", "load_report", "model_card_section", "normalize_answer", "save_report",
           "split_prompt_answer", "token_f1"]

REPORT_FILE = "quality.json"
REPORT_MARKDOWN = "quality.md"
QA_PROFILES = frozenset({"qa"})
SUMMARY_PROFILES = frozenset({"summarization"})
SHORT_ANSWER_TOKENS = 48  # median reference length up to which data counts as question-answer-like
TEST_COLUMNS = ("test", "tests", "test_list", "test_code", "unit_tests")
PROMPT_COLUMNS = ("prompt", "instruction", "question", "input", "text", "problem", "task")
MAX_NEW_TOKENS = 256  # a summary or a function, not an essay: the check must stay quick on a CPU
WORSE_SHOWN = 5  # how many of the examples that got worse the report keeps
RAW_ROWS_SCANNED = 20_000  # how far into the data file Studio looks for the held-out rows' tests


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
class MetricScore:
    """One profile metric averaged over the examples it was measured on, for base and tuned."""

    key: str  # "exact_match", "token_f1", "rouge_l", "tests_passed", "loss", "perplexity"
    label: str  # as shown: "token F1", "ROUGE-L", "tests passed", ...
    base: float
    tuned: float
    higher_is_better: bool
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
    # Since the per-example comparison (older reports have none of these):
    tally: Tally | None = None  # how many examples got better, stayed the same, got worse
    metrics: tuple[MetricScore, ...] = ()
    worse_examples: tuple[dict[str, Any], ...] = ()  # prompt, reference, base, tuned, metric, scores
    per_example: tuple[dict[str, Any], ...] = ()  # base, tuned, outcome of every compared example
    judge: JudgeResult | None = None
    profile: str = ""

    @property
    def verdict(self) -> str:
        """The tally in words; when the answers show no clear difference, the held-out loss (which moves
        long before whole answers change) says what it sees too."""
        if self.tally is None:
            return self.loss_verdict
        text = verdict_sentence(self.tally)
        if self.tally.overall == "same" and self.tally.metric != "held-out loss" and self.base and self.tuned:
            text += f" {self.loss_verdict}"
        return text

    @property
    def overall(self) -> str:
        """better, same, worse or unknown: for colours and icons, not for reading."""
        if self.tally is not None:
            return self.tally.overall
        if self.base is None or self.tuned is None or not self.base.loss:
            return "unknown"
        change = (self.tuned.loss - self.base.loss) / self.base.loss
        return "better" if change < -0.02 else "worse" if change > 0.02 else "same"

    @property
    def loss_verdict(self) -> str:
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
        data["metrics"] = [asdict(m) for m in self.metrics]
        data["worse_examples"] = list(self.worse_examples)
        data["per_example"] = list(self.per_example)
        data["judge"] = self.judge.to_dict() if self.judge else None
        data["verdict"] = self.verdict
        data["overall"] = self.overall
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QualityReport:
        def part(kind: type, key: str) -> Any:
            value = data.get(key)
            return kind(**value) if isinstance(value, dict) else None

        judge = data.get("judge")
        return cls(run_id=data["run_id"], created=data["created"], eval_examples=int(data["eval_examples"]),
                   base=part(LossScore, "base"), tuned=part(LossScore, "tuned"),
                   qa_base=part(AnswerScore, "qa_base"), qa_tuned=part(AnswerScore, "qa_tuned"),
                   samples=tuple(data.get("samples") or ()), tally=part(Tally, "tally"),
                   metrics=tuple(MetricScore(**m) for m in data.get("metrics") or () if isinstance(m, dict)),
                   worse_examples=tuple(data.get("worse_examples") or ()),
                   per_example=tuple(data.get("per_example") or ()),
                   judge=JudgeResult.from_dict(judge) if isinstance(judge, dict) else None,
                   profile=str(data.get("profile") or ""))


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


@dataclass
class _Example:
    """One held-out example on its way through the check."""

    prompt: list[int]
    reference: list[int]
    loss: dict[str | None, float] = field(default_factory=dict)  # mean loss per learned token, by model
    answer: dict[str | None, str] = field(default_factory=dict)  # greedy answers, by model
    tests: str = ""


def evaluate_quality(run: RunRecord, max_examples: int = 64, qa_examples: int = 32,
                     task: TaskContext = QUIET, judge: JudgeSettings | None = None) -> QualityReport:
    """Score base and tuned on up to `max_examples` held-out examples (answers on up to `qa_examples`),
    compare them example by example and save the report into the run. `judge`: None reads the saved
    judge settings (off unless the user switched a judge on)."""
    import torch

    from studio.engine.library.judge import load_settings, run_judge
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
    per_row: dict[str | None, list[float]] = {}
    scores: dict[str | None, LossScore] = {}
    for index, name in enumerate((None, "tuned")):
        task.report(f"Scoring the {'base' if name is None else 'tuned'} model", 0.2 + 0.2 * index)
        with use(loaded, name), torch.no_grad():
            scores[name], per_row[name] = _loss(loaded.model, rows, stop)
    examples: list[_Example] = []
    for i, row in enumerate(rows):
        pair = split_prompt_answer(row["input_ids"], row["assistant_masks"])
        if pair is not None and not math.isnan(per_row[None][i]):
            examples.append(_Example(pair[0], pair[1], {None: per_row[None][i], "tuned": per_row["tuned"][i]}))
    decode = loaded.tokenizer.decode

    def text(ids: list[int]) -> str:
        return str(decode(ids, skip_special_tokens=True)).strip()

    mode = "loss"
    if examples:
        tests = _tests_for(config.dataset_path or "", config.column_mapping or {}, [text(e.prompt) for e in examples])
        if any(tests):
            for example, found in zip(examples, tests, strict=True):
                example.tests = found
            examples, mode = [e for e in examples if e.tests], "tests_passed"
        elif config.profile in SUMMARY_PROFILES:
            mode = "rouge_l"
        elif config.profile in QA_PROFILES or \
                statistics.median(len(e.reference) for e in examples) <= SHORT_ANSWER_TOKENS:
            mode = "token_f1"
    answered = examples[:qa_examples] if mode != "loss" else []
    for index, name in enumerate((None, "tuned")):
        if not answered:
            break
        task.report(f"Answering with the {'base' if name is None else 'tuned'} model", 0.45 + 0.2 * index)
        budget = min(max(len(e.reference) for e in answered) + (32 if mode == "tests_passed" else 8),
                     MAX_NEW_TOKENS)
        with use(loaded, name), torch.no_grad():
            for example, answer in zip(answered, _greedy(loaded, [e.prompt for e in answered], budget, stop),
                                       strict=True):
                example.answer[name] = answer
    refs = [text(e.reference) for e in answered]
    metrics: list[MetricScore] = []
    qa: dict[str | None, AnswerScore] = {}
    if mode == "tests_passed":
        task.report("Running the examples' own tests", 0.85)
        per_example = {name: [_passes(e.answer[name], e.tests, stop) for e in answered] for name in (None, "tuned")}
        label, higher = "tests passed", True
    elif mode == "rouge_l":
        per_example = {name: [rouge_l(e.answer[name], r) for e, r in zip(answered, refs, strict=True)]
                       for name in (None, "tuned")}
        label, higher = "ROUGE-L", True
    elif mode == "token_f1":
        per_example = {name: [token_f1(e.answer[name], r) for e, r in zip(answered, refs, strict=True)]
                       for name in (None, "tuned")}
        label, higher = "token F1", True
        for name in (None, "tuned"):
            qa[name] = AnswerScore(
                exact_match=statistics.fmean(exact_match(e.answer[name], r) for e, r in zip(answered, refs,
                                                                                            strict=True)),
                token_f1=statistics.fmean(per_example[name]), examples=len(refs))
        metrics.append(MetricScore("exact_match", "exact match", qa[None].exact_match, qa["tuned"].exact_match,
                                   True, len(refs)))
    else:
        per_example = {name: [e.loss[name] for e in examples] for name in (None, "tuned")}
        label, higher = "held-out loss", False
    compared = answered if mode != "loss" else examples
    if mode != "loss" and compared:
        metrics.append(MetricScore(mode, label, statistics.fmean(per_example[None]),
                                   statistics.fmean(per_example["tuned"]), higher, len(compared)))
    if scores[None].tokens and scores["tuned"].tokens:
        metrics += [MetricScore("loss", "held-out loss", scores[None].loss, scores["tuned"].loss, False, len(rows)),
                    MetricScore("perplexity", "perplexity", scores[None].perplexity, scores["tuned"].perplexity,
                                False, len(rows))]
    outcomes: list[Outcome] = [compare_scores(b, t, higher) for b, t in zip(per_example[None], per_example["tuned"],
                                                                           strict=True)]
    worse = sorted((i for i, o in enumerate(outcomes) if o == "worse"),
                   key=lambda i: -abs(per_example["tuned"][i] - per_example[None][i]))[:WORSE_SHOWN]
    if mode == "loss" and worse:
        task.report("Answering the examples that got worse", 0.8)
        shown = [compared[i] for i in worse]
        budget = min(max(len(e.reference) for e in shown) + 8, MAX_NEW_TOKENS // 2)
        for name in (None, "tuned"):
            with use(loaded, name), torch.no_grad():
                for example, answer in zip(shown, _greedy(loaded, [e.prompt for e in shown], budget, stop),
                                           strict=True):
                    example.answer[name] = answer
    worse_examples = tuple(
        {"prompt": text(compared[i].prompt)[-300:], "reference": text(compared[i].reference),
         "base": compared[i].answer.get(None, ""), "tuned": compared[i].answer.get("tuned", ""),
         "metric": label, "base_score": round(per_example[None][i], 4),
         "tuned_score": round(per_example["tuned"][i], 4)}
        for i in worse)
    samples = tuple(
        {"prompt": text(e.prompt)[-300:], "reference": r, "base": e.answer[None], "tuned": e.answer["tuned"]}
        for e, r in list(zip(answered, refs, strict=True))[:3])
    judged = None
    settings = judge if judge is not None else load_settings()
    if settings.enabled and answered:
        pairs = [{"prompt": text(e.prompt)[-1500:], "reference": r, "base": e.answer[None],
                  "tuned": e.answer["tuned"]} for e, r in zip(answered, refs, strict=True)]
        judged = run_judge(settings, pairs, Span(stop, 0.9, 0.98, error=_cancelled))
    report = QualityReport(
        run.id, now_iso(), len(rows), scores[None], scores["tuned"], qa.get(None), qa.get("tuned"), samples,
        tally=tally(outcomes, label) if compared else None, metrics=tuple(metrics), worse_examples=worse_examples,
        per_example=tuple({"base": round(b, 4), "tuned": round(t, 4), "outcome": o}
                          for b, t, o in zip(per_example[None], per_example["tuned"], outcomes, strict=True)),
        judge=judged, profile=config.profile)
    save_report(run.run_dir, report)
    task.report("Done", 1.0)
    return report


def _passes(answer: str, tests: str, stop: TaskContext) -> float:
    stop.check()
    return float(run_code_tests(extract_code(answer), tests).passed)


def _loss(model: Any, rows: list[dict[str, list[int]]], stop: TaskContext) -> tuple[LossScore, list[float]]:
    """Mean loss per learned token (the same tokens training learned from), one example at a time; and each
    example's own mean (NaN for one with nothing learned)."""
    import torch

    total, count = 0.0, 0
    each: list[float] = []
    for row in rows:
        stop.check()
        ids = torch.tensor([row["input_ids"]])
        labels = ids.clone()
        labels[0, torch.tensor(row["assistant_masks"]) == 0] = -100
        learned = int((labels[0, 1:] != -100).sum())  # the model predicts token t from tokens before it
        if learned == 0:
            each.append(float("nan"))
            continue
        out = model(input_ids=ids, labels=labels)
        each.append(float(out.loss))
        total += float(out.loss) * learned
        count += learned
    loss = total / count if count else float("nan")
    return LossScore(loss=round(loss, 5), perplexity=round(math.exp(min(loss, 50.0)), 3), tokens=count), each


def _tests_for(dataset: str, mapping: dict[str, str], prompts: list[str]) -> list[str]:
    """The tests each held-out prompt's example ships with ("" for none), found in the original data file:
    Studio's prepared data keeps only the conversation, so the test column is read from the file itself."""
    from itertools import islice

    from studio.engine.datasets.detect import FileProblem, detect
    from studio.engine.datasets.readers import RowReader

    empty = [""] * len(prompts)
    try:
        detection = detect(dataset)
        if detection.format not in {"jsonl", "json", "csv", "parquet"}:
            return empty
        found: list[tuple[str, str]] = []
        for raw in islice(RowReader(detection), RAW_ROWS_SCANNED):
            value = raw.value
            if raw.problem is not None or not isinstance(value, dict):
                continue
            tests = _test_text(next((value[c] for c in TEST_COLUMNS if value.get(c)), ""))
            if not tests:
                if raw.line > 50 and not found:
                    return empty  # no test column in the first rows: this data has no tests
                continue
            prompt = _prompt_text(value, mapping)
            if prompt:
                found.append((_squash(prompt), tests))
    except (FileProblem, OSError, ValueError):
        return empty
    squashed = [_squash(p) for p in prompts]
    return [next((tests for key, tests in found if key and key in p), "") for p in squashed]


def _test_text(value: object) -> str:
    if isinstance(value, list):
        return "\n".join(str(v) for v in value if str(v).strip())
    return str(value) if isinstance(value, str) else ""


def _prompt_text(value: dict[str, Any], mapping: dict[str, str]) -> str:
    """The user's part of a raw row, whatever the file calls it."""
    messages = value.get("messages") or value.get("conversations")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict) and message.get("role") in {"user", "human"}:
                return str(message.get("content") or message.get("value") or "")
    columns = [k for k, role in mapping.items() if role == "user"] + list(PROMPT_COLUMNS)
    return next((str(value[c]) for c in columns if isinstance(value.get(c), str) and value[c].strip()), "")


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


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
    for metric in report.metrics:
        if metric.key in {"rouge_l", "tests_passed"}:
            shown = "{:.0%}" if metric.key == "tests_passed" else "{:.2f}"
            lines.append(f"| {metric.label} | {shown.format(metric.base)} | {shown.format(metric.tuned)} |")
    if report.judge is not None:
        lines += ["", report.judge.sentence]
    return "\n".join(lines) + "\n"
