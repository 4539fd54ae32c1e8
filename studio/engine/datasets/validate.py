"""Full validation: one streaming pass that reads, normalizes, checks and measures every row.

Memory stays bounded: rows are processed one at a time, only hashes (for duplicates) and token lengths
(for statistics) are kept per row. Token counting runs in batches through the fast tokenizer; near
duplicates are found in batches too (neardup.py), among the first 200,000 rows.
"""

from __future__ import annotations

import json
import re
import time
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from studio.engine.datasets.cache import (
    cache_key,
    content_hash,
    datasets_cache,
    read_json,
    tokenizer_identity,
    write_atomic,
)
from studio.engine.datasets.detect import FileProblem, detect
from studio.engine.datasets.inspection import choose_schema, head_rows
from studio.engine.datasets.issues import IssueCollector, make_issue
from studio.engine.datasets.normalize import normalize_row
from studio.engine.datasets.options import DatasetOptions
from studio.engine.datasets.readers import RowReader
from studio.engine.datasets.report import SplitProposal, ValidationReport
from studio.engine.datasets.schemas import Schema
from studio.engine.datasets.stats import summarize
from studio.engine.errors import ExitCode, StudioError
from studio.engine.profiles import get_profile
from studio.engine.progress import QUIET, Cancelled, Span, TaskContext

Sink = Callable[[dict[str, Any]], None]

TOKEN_BATCH = 1024
_CHECK_EVERY = 256
_PROGRESS_INTERVAL_S = 0.2
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?|\d{2,4}[\s.-])\d{3,4}[\s.-]?\d{3,4}(?!\w)")
MIN_FOR_EVAL = 50
MIN_USABLE_EXAMPLES = 10  # fewer real examples than this cannot teach a model anything: refused, not warned
MAX_EVAL = 1000
CHECKS_VERSION = 4  # part of the report cache key: bump when a check changes, so old reports are redone


def validate_file(
    path: str | Path,
    options: DatasetOptions = DatasetOptions(),
    *,
    task: TaskContext = QUIET,
    use_cache: bool = True,
) -> ValidationReport:
    """Validate a dataset file; an unchanged file with the same options returns its cached report."""
    path = Path(path)
    key = _report_key(path, options) if use_cache else None
    if key is not None:
        cached = read_json(datasets_cache() / "reports" / f"{key}.json")
        if cached is not None:
            task.report("Validated (unchanged since last time)", 1.0)
            return ValidationReport.from_dict(cached)
    report = scan(path, options, task=task)
    if key is not None and report.content_hash:
        write_atomic(datasets_cache() / "reports" / f"{key}.json", _dumps(report))
    return report


def iter_examples(path: str | Path, *, mapping: dict[str, str] | None = None) -> Iterator[dict[str, Any]]:
    """Normalized usable examples, streamed (duplicates included; `prepare_dataset` removes them)."""
    try:
        detection = detect(path)
        schema, _, issue = choose_schema(head_rows(detection), mapping)
    except FileProblem as problem:
        raise _unusable(Path(path), problem.issue.message, problem.issue.suggestion) from None
    if schema is None:
        message = issue.message if issue else "The file holds no examples."
        raise _unusable(Path(path), message, issue.suggestion if issue else "Check the file.")
    try:
        for raw in RowReader(detection, list(schema.mapping) or None):
            if raw.problem is None:
                outcome = normalize_row(raw.value, schema)
                if outcome.example is not None:
                    yield outcome.example
    except FileProblem as problem:
        raise _unusable(Path(path), problem.issue.message, problem.issue.suggestion) from None


def scan(
    path: Path, options: DatasetOptions, *, task: TaskContext = QUIET, sink: Sink | None = None
) -> ValidationReport:
    """The uncached pass behind validate_file and prepare_dataset; `sink` receives each kept example."""
    started = time.monotonic()
    report = ValidationReport(path=str(path), profile=options.profile)
    scanner = _Scanner(report, options, Span(task, error=_cancelled), sink)
    try:
        detection = detect(path)
        report.format = detection.format
        report.encoding = detection.encoding.label if detection.encoding else None
        report.issues.extend(detection.issues)
        schema, _, issue = choose_schema(head_rows(detection), options.mapping)
        if issue is not None:
            report.issues.append(issue)
        if schema is not None:
            report.schema, report.kind, report.mapping = schema.name, schema.kind, dict(schema.mapping)
            scanner.run(RowReader(detection, list(schema.mapping) or None), schema)
            report.content_hash = _hash_or_none(path)
        if detection.format == "txt" and detection.text_mode == "chunks" and report.rows_usable:
            report.issues.append(
                make_issue("text_chunked", count=report.rows_read, detail="about 2,000 characters each")
            )
    except FileProblem as problem:
        report.issues.append(problem.issue)
    scanner.finish()
    _profile_checks(report)
    report.split = propose_split(report.rows_usable, options.eval_fraction, options.seed)
    report.sort_issues()
    report.seconds = time.monotonic() - started
    return report


class _Scanner:
    """Per-row checks and running totals for one validation pass."""

    def __init__(self, report: ValidationReport, options: DatasetOptions, task: Span, sink: Sink | None) -> None:
        from studio.engine.datasets.neardup import NearDuplicates
        from studio.engine.datasets.tokens import TokenCounter

        self.report = report
        self.rows = IssueCollector()
        tokenizer_path = options.tokenizer_path
        self.counter = TokenCounter(tokenizer_path) if tokenizer_path is not None else None
        self.tokenizer_name = str(tokenizer_path) if tokenizer_path is not None else ""
        self.max_length = options.max_length
        self.task = task
        self.sink = sink
        self.lengths = array("I")
        self.pending: list[tuple[int, dict[str, Any]]] = []
        self.exact: set[int] = set()
        self.near = NearDuplicates(self._near_duplicate)
        self._last_progress = 0.0

    def run(self, reader: RowReader, schema: Schema) -> None:
        report, rows = self.report, self.rows
        for raw in reader:
            report.rows_read += 1
            if report.rows_read % _CHECK_EVERY == 0:
                self._tick(reader)
            if raw.problem is not None:
                rows.add(raw.problem, raw.line, raw.value, raw.detail)
                continue
            outcome = normalize_row(raw.value, schema)
            for code in dict.fromkeys(code for code, _ in outcome.notes):
                rows.add(code, raw.line, raw.value, next(d for c, d in outcome.notes if c == code))
            if outcome.example is None:
                rows.add(outcome.problem or "missing_field", raw.line, raw.value, outcome.detail)
                continue
            self._keep(raw.line, outcome.example)
        self._flush_tokens()

    def _keep(self, line: int, example: dict[str, Any]) -> None:
        if "messages" in example:
            text = "\x1f".join(m["role"] + "\x1e" + m["content"] for m in example["messages"])
        elif "text" in example:
            text = example["text"]
        else:  # preference data: the whole pair (or labeled answer) is the example
            text = json.dumps(example, ensure_ascii=False, sort_keys=True)
        exact = hash(text)
        if exact in self.exact:
            self.rows.add("exact_duplicates", line, example)
            self.report.duplicates_removed += 1
            return
        self.exact.add(exact)
        self.near.add(line, *_sides(example), example)
        if "@" in text and _EMAIL.search(text):
            self.rows.add("pii_email", line, example)
        phone = _PHONE.search(text)
        if phone is not None and 9 <= sum(c.isdigit() for c in phone.group()) <= 15:
            self.rows.add("pii_phone", line, example)
        if "\ufffd" in text:
            self.rows.add("encoding_replaced", line, example)
        if self.counter is None:
            self._accept(example)
            return
        self.pending.append((line, example))
        if len(self.pending) >= TOKEN_BATCH:
            self._flush_tokens()

    def _near_duplicate(self, line: int, earlier: int, example: dict[str, Any]) -> None:
        self.rows.add("near_duplicates", line, example, f"like line {earlier}")

    def _accept(self, example: dict[str, Any]) -> None:
        self.report.rows_usable += 1
        if self.sink is not None:
            self.sink(example)

    def _flush_tokens(self) -> None:
        """Measure the pending examples; those the chat template rejects are skipped, the rest kept."""
        if not self.pending or self.counter is None:
            return
        lengths = self.counter.lengths([example for _, example in self.pending])
        for (line, example), length in zip(self.pending, lengths, strict=True):
            if isinstance(length, str):
                self.rows.add("template_rejected", line, example, length)
                continue
            self.lengths.append(length)
            if self.max_length and length > self.max_length:
                self.rows.add("too_long", line, example, f"{length} tokens")
            self._accept(example)
        self.pending.clear()

    def _tick(self, reader: RowReader) -> None:
        self.task.check()
        now = time.monotonic()
        if now - self._last_progress >= _PROGRESS_INTERVAL_S:
            self._last_progress = now
            self.task.report(f"Checked {self.report.rows_read:,} rows", 0.97 * reader.progress())

    def finish(self) -> None:
        report = self.report
        self.near.flush()
        share = f"{self.rows.count('too_long') / max(1, report.rows_usable):.1%}"
        report.issues.extend(self.rows.issues(overrides={"too_long": {"detail": self.max_length, "share": share}}))
        if self.near.unchecked:
            report.issues.append(
                make_issue("near_duplicates_partial", count=self.near.unchecked, detail=f"{self.near.max_rows:,}")
            )
        report.rows_skipped = report.rows_read - report.rows_usable - report.duplicates_removed
        if report.schema is not None or report.rows_read:
            if report.rows_read == 0 and not report.errors:
                report.issues.append(make_issue("no_rows"))
            elif report.rows_usable == 0 and not report.errors:
                report.issues.append(make_issue("no_usable_rows", rows_read=report.rows_read))
            elif report.rows_usable < MIN_USABLE_EXAMPLES and not report.errors:
                report.issues.append(
                    make_issue(
                        "too_few_usable",
                        count=report.rows_usable,
                        usable=report.rows_usable,
                        rows_read=report.rows_read,
                        verb="is a usable example" if report.rows_usable == 1 else "are usable examples",
                        minimum=MIN_USABLE_EXAMPLES,
                    )
                )
        if self.counter is not None:
            report.stats = summarize(self.lengths, self.tokenizer_name, self.max_length)
        self.task.parent.report("Validation finished", 1.0)  # the work is done: too late to cancel it


def _sides(example: dict[str, Any]) -> tuple[str, str]:
    """What the near-duplicate check compares: what the user says and what the assistant answers. The
    system prompt is left out: it is often the same in every row and would make unrelated rows look alike."""
    if "text" in example:
        return example["text"], ""
    if "messages" not in example:  # preference data: the prompt and the preferred (or only) answer
        answer = example.get("chosen") or example["completion"]
        return "\n".join(m["content"] for m in example["prompt"] if m["role"] == "user"), "\n".join(
            m["content"] for m in answer
        )
    messages = example["messages"]
    prompt = "\n".join(m["content"] for m in messages if m["role"] == "user")
    return prompt, "\n".join(m["content"] for m in messages if m["role"] == "assistant")


def _profile_checks(report: ValidationReport) -> None:
    """Is there enough data of the right kind for the chosen use case?"""
    if report.kind is None or not report.rows_usable:
        return
    profile = get_profile(report.profile or ("domain" if report.kind == "text" else "chatbot"))
    report.profile = profile.id
    count = report.rows_usable
    if count < profile.min_examples:
        report.issues.append(
            make_issue("few_examples", count=count, detail=profile.name, recommended=profile.recommended_examples)
        )
    elif count < profile.recommended_examples:
        report.issues.append(
            make_issue(
                "below_recommended",
                count=count,
                detail=profile.name,
                recommended=profile.recommended_examples,
            )
        )
    if profile.id == "domain" and report.kind == "conversation":
        report.issues.append(
            make_issue(
                "profile_mismatch",
                detail="Domain Adaptation learns from plain documents, but this file holds conversations",
                advice="Pick the Chatbot or Q&A use case for conversations, or use a file of plain text.",
            )
        )
    elif profile.id != "domain" and report.kind == "text":
        report.issues.append(
            make_issue(
                "profile_mismatch",
                detail=f"{profile.name} learns from prompts and answers, but this file is plain text",
                advice="Pick Domain Adaptation for plain documents, or give Studio prompt/answer pairs.",
            )
        )


def propose_split(n_examples: int, eval_fraction: float = 0.1, seed: int = 42) -> SplitProposal:
    """Hold out a validation share when there is enough data for it to mean something."""
    if n_examples < MIN_FOR_EVAL or eval_fraction <= 0:
        reason = (
            f"fewer than {MIN_FOR_EVAL} examples: all train, progress is judged by the training loss"
            if eval_fraction > 0
            else "no validation share requested"
        )
        return SplitProposal(train=n_examples, eval=0, eval_fraction=0.0, seed=seed, reason=reason)
    held = max(5, min(round(n_examples * eval_fraction), MAX_EVAL))
    reason = f"{eval_fraction:.0%} held out to measure progress"
    if held == MAX_EVAL:
        reason = f"{MAX_EVAL:,} examples held out (enough to measure progress)"
    return SplitProposal(
        train=n_examples - held,
        eval=held,
        eval_fraction=round(held / n_examples, 4),
        seed=seed,
        reason=reason,
    )


def _report_key(path: Path, options: DatasetOptions) -> str | None:
    digest = _hash_or_none(path) if path.is_file() else None
    if digest is None:
        return None
    return cache_key(
        "report",
        digest,
        options.mapping,
        tokenizer_identity(options.tokenizer_path),
        options.max_length,
        options.profile,
        options.eval_fraction,
        options.seed,
        CHECKS_VERSION,
    )


def _hash_or_none(path: Path) -> str | None:
    try:
        return content_hash(path)
    except OSError:
        return None


def _dumps(report: ValidationReport) -> str:
    return json.dumps(report.to_dict(), ensure_ascii=False)


def _cancelled() -> Cancelled:
    return Cancelled(what="Validation was cancelled.", actions=["Start the validation again when you are ready."])


def _unusable(path: Path, message: str, suggestion: str) -> StudioError:
    return StudioError(
        what=f"Studio cannot use {path.name}: {message}",
        why=suggestion,
        actions=[
            "Run `studio validate` on the file to see every problem and how to fix it.",
            "Try the sample dataset first to check that everything else works.",
        ],
        code="dataset_unusable",
        exit_code=ExitCode.DATASET_UNUSABLE,
    )
