"""Every problem Studio can find in a dataset, in plain language, with what to do about it.

One catalog keeps the wording consistent between the CLI, the GUI and the JSON report: code -> severity,
a message template and a suggestion. Templates may use {count}, {share}, {detail} and any extra fields
passed when the issue is built.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]
MAX_EXAMPLES = 5
_VERBS = {
    "have": "has",
    "are": "is",
    "lack": "lacks",
    "hold": "holds",
    "seem": "seems",
    "contain": "contains",
    "use": "uses",
    "repeat": "repeats",
}
_SINGULAR = re.compile(rf"^1 (\w+?)s((?: \([^)]*\))?) ({'|'.join(_VERBS)})\b")
EXCERPT_CHARS = 120


@dataclass(frozen=True)
class IssueKind:
    severity: Severity
    message: str
    suggestion: str


CATALOG: dict[str, IssueKind] = {
    # The file as a whole.
    "not_found": IssueKind("error", "The file does not exist.", "Check the path, or pick the file again."),
    "is_directory": IssueKind(
        "error",
        "This is a folder, not a file.",
        "Choose one data file inside the folder (.jsonl, .csv, ...).",
    ),
    "unreadable": IssueKind(
        "error",
        "Studio is not allowed to read this file.",
        "Check the file's permissions, or copy it to a folder you own.",
    ),
    "read_failed": IssueKind(
        "error",
        "The file could not be read to the end: {detail}.",
        "Make sure the file is not being moved, deleted or written while Studio reads it, then try again.",
    ),
    "empty_file": IssueKind("error", "The file is empty.", "Export your data again; the file has no content."),
    "binary_file": IssueKind(
        "error",
        "This is not a text data file (it contains binary data).",
        "Save your data as JSON Lines, CSV, plain text or Parquet.",
    ),
    "unsupported_format": IssueKind(
        "error",
        "Studio cannot read {detail} files.",
        "Open it in its program and save it as CSV or JSON Lines.",
    ),
    "json_invalid": IssueKind(
        "error",
        "The JSON is broken at line {line}: {detail}.",
        "The file may be cut short or hand-edited. Fix it at that line, or export it again.",
    ),
    "item_too_large": IssueKind(
        "error",
        "One item is larger than {detail}, more than Studio reads at once.",
        "Split that item into smaller examples.",
    ),
    "parquet_invalid": IssueKind("error", "The Parquet file is damaged: {detail}.", "Export the Parquet file again."),
    "unknown_schema": IssueKind(
        "error",
        "Studio cannot tell which columns hold the prompt and the answer (columns: {detail}).",
        "Tell Studio, e.g. `--mapping question=user --mapping reply=assistant`, or rename the columns "
        "to prompt/completion.",
    ),
    "bad_mapping": IssueKind(
        "error",
        "The column mapping is not valid: {detail}.",
        "Use column=role, where role is one of system, user, input, context, assistant, text or messages.",
    ),
    "no_rows": IssueKind("error", "The file holds no examples.", "Check that you exported the right file."),
    "no_usable_rows": IssueKind(
        "error",
        "None of the {rows_read} rows can be used for training.",
        "Fix the problems listed above; the first examples of each show what is wrong.",
    ),
    "too_few_usable": IssueKind(
        "error",
        "Only {usable} of {rows_read} rows {verb}; Studio needs at least {minimum}.",
        "Fix the problems listed above; add more examples; or check that you exported the right file "
        "and columns.",
    ),
    # Reading.
    "encoding_fallback": IssueKind(
        "warning",
        "The file is not UTF-8; Studio read it as {detail}.",
        "Check in the preview that accented letters, quotes and symbols look right; if they do not, save the "
        "file as UTF-8 (most editors offer it under 'Save as' / 'Encoding') and load it again.",
    ),
    "encoding_replaced": IssueKind(
        "warning",
        "{count} rows contain characters that could not be decoded (shown as �).",
        "Save the file as UTF-8 and check those rows.",
    ),
    "wrong_extension": IssueKind(
        "warning", "The file is named {detail}.", "Rename the file so other tools read it correctly too."
    ),
    "bad_json_line": IssueKind(
        "warning",
        "{count} lines are not valid JSON and were skipped.",
        "Each line must hold one complete JSON object; fix or remove those lines.",
    ),
    "row_too_large": IssueKind(
        "warning",
        "{count} rows are larger than {detail} and were skipped.",
        "Split very long rows into several examples.",
    ),
    "csv_bad_row": IssueKind(
        "warning",
        "{count} rows have a different number of columns than the header and were skipped.",
        "Check for unquoted commas or line breaks inside those rows.",
    ),
    # Rows.
    "row_not_object": IssueKind(
        "warning",
        "{count} rows are not records (a number, a text or a list) and were skipped.",
        'Each row must be an object with named fields, e.g. {{"prompt": ..., "completion": ...}}.',
    ),
    "missing_field": IssueKind(
        "warning",
        "{count} rows lack a required column ({detail}) and were skipped.",
        "Fill in those columns or remove the rows.",
    ),
    "empty_answer": IssueKind("warning", "{count} rows have an empty answer and were skipped.", "Remove or fill them."),
    "empty_prompt": IssueKind(
        "warning", "{count} rows have an empty question or prompt and were skipped.", "Remove or fill them."
    ),
    "empty_text": IssueKind("warning", "{count} rows have no text and were skipped.", "Remove them."),
    "bad_messages": IssueKind(
        "warning",
        "{count} conversations are not a list of messages with a role and content; skipped.",
        "Each message needs a role (system, user or assistant) and a text content.",
    ),
    "unknown_role": IssueKind(
        "warning",
        "{count} conversations use a role Studio does not know ({detail}); skipped.",
        "Use the roles system, user and assistant (or human/gpt in ShareGPT files).",
    ),
    "no_answer": IssueKind(
        "warning",
        "{count} conversations have no assistant answer after a user message; skipped.",
        "Every example needs at least one user message followed by an assistant answer.",
    ),
    # Preference data (DPO, ORPO, KTO).
    "same_answers": IssueKind(
        "warning",
        "{count} rows have the same chosen and rejected answer and were skipped (they cannot show which answer "
        "is better).",
        "Replace the rejected answer with a worse one, or remove those rows.",
    ),
    "empty_side": IssueKind(
        "warning",
        "{count} rows have an empty chosen or rejected answer and were skipped.",
        "Fill in both answers, or remove those rows.",
    ),
    "bad_side": IssueKind(
        "warning",
        "{count} rows have a chosen or rejected answer Studio cannot read and were skipped.",
        "Give each answer as text, or as a list of messages whose first one is the assistant's.",
    ),
    "bad_label": IssueKind(
        "warning",
        "{count} rows have a label that is neither true nor false ({detail}) and were skipped.",
        "Mark each answer true (a good answer) or false (a bad one).",
    ),
    "template_rejected": IssueKind(
        "warning",
        "{count} conversations are refused by the model's chat template ({detail}); skipped.",
        "Fix the order of their messages (most templates need user and assistant turns to alternate).",
    ),
    "role_order": IssueKind(
        "warning",
        "{count} conversations have their roles in an unusual order ({detail}).",
        "Conversations should alternate user and assistant, with an optional system message first.",
    ),
    "mixed_schemas": IssueKind(
        "warning",
        "{count} rows use a different layout ({detail}) than the rest of the file.",
        "Studio read them anyway; keep one layout per file to avoid surprises.",
    ),
    "non_text_value": IssueKind(
        "info",
        "{count} rows hold numbers or other non-text values; Studio turned them into text.",
        "Check that those values are what you want the model to learn.",
    ),
    "exact_duplicates": IssueKind(
        "warning",
        "{count} rows repeat earlier rows exactly and will be left out of training.",
        "Remove duplicates so the model does not over-learn them.",
    ),
    "near_duplicates": IssueKind(
        "info",
        "{count} rows are nearly the same as an earlier row (for example the same answer with a few words changed).",
        "They stay in the training data. Check whether you meant to repeat them: each example names the "
        "earlier line it resembles.",
    ),
    "near_duplicates_partial": IssueKind(
        "info",
        "The near-duplicate check covered the first {detail} rows; later rows are only checked for exact duplicates.",
        "To check the rest for near duplicates too, split the file and validate each part.",
    ),
    "pii_email": IssueKind(
        "warning",
        "{count} rows seem to contain email addresses.",
        "Remove or mask personal data before training; a model can repeat what it saw.",
    ),
    "pii_phone": IssueKind(
        "warning",
        "{count} rows seem to contain phone numbers.",
        "Remove or mask personal data before training; a model can repeat what it saw.",
    ),
    "too_long": IssueKind(
        "warning",
        "{count} rows ({share}) are longer than the maximum length of {detail} tokens and will be cut.",
        "Raise the maximum length, or shorten or split those examples.",
    ),
    "few_examples": IssueKind(
        "warning",
        "Only {count} usable examples: results will be weak for {detail}.",
        "We suggest at least {recommended} examples.",
    ),
    "below_recommended": IssueKind(
        "info",
        "{count} usable examples: enough to start for {detail}.",
        "Results usually improve up to about {recommended} examples.",
    ),
    "profile_mismatch": IssueKind("warning", "{detail}.", "{advice}"),
    "guessed_mapping": IssueKind(
        "info",
        "Studio guessed which columns to use: {detail}.",
        "Check the guess; override it with --mapping column=role if it is wrong.",
    ),
    "text_chunked": IssueKind(
        "info",
        "The plain text was split into {count} pieces ({detail}).",
        "Separate documents with a blank line if you want Studio to keep them whole.",
    ),
}


@dataclass
class Issue:
    """One kind of problem, how often it occurred, and the first few places it did."""

    code: str
    severity: Severity
    message: str
    suggestion: str
    count: int = 1
    examples: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "suggestion": self.suggestion,
            "count": self.count,
            "examples": list(self.examples),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Issue:
        return cls(**data)


def make_issue(code: str, *, count: int = 1, examples: list[dict[str, Any]] | None = None, **fields: Any) -> Issue:
    kind = CATALOG[code]
    values = {"count": count, "detail": "", "share": "", "line": "?", **fields}
    message = kind.message.format(**values)
    if count == 1:
        message = _SINGULAR.sub(lambda m: f"1 {m[1]}{m[2]} {_VERBS[m[3]]}", message).replace(" were ", " was ")
    return Issue(
        code=code,
        severity=kind.severity,
        message=message,
        suggestion=kind.suggestion.format(**values),
        count=count,
        examples=examples or [],
    )


def excerpt(value: Any) -> str:
    """A short, single-line view of a row for the report."""
    if isinstance(value, dict) and isinstance(value.get("messages"), list):
        text = " | ".join(f"{m.get('role')}: {m.get('content')}" for m in value["messages"] if isinstance(m, dict))
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


class IssueCollector:
    """Counts row-level problems by code and keeps the first few line numbers and excerpts of each."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._examples: dict[str, list[dict[str, Any]]] = {}
        self._details: dict[str, list[str]] = {}

    def add(self, code: str, line: int, value: Any = None, detail: str = "") -> None:
        self._counts[code] = self._counts.get(code, 0) + 1
        examples = self._examples.setdefault(code, [])
        if len(examples) < MAX_EXAMPLES:
            entry: dict[str, Any] = {"line": line, "excerpt": excerpt(value) if value is not None else ""}
            if detail:
                entry["detail"] = detail
            examples.append(entry)
        details = self._details.setdefault(code, [])
        if detail and detail not in details and len(details) < 3:
            details.append(detail)

    def count(self, code: str) -> int:
        return self._counts.get(code, 0)

    def issues(self, overrides: dict[str, dict[str, Any]] | None = None) -> list[Issue]:
        """One Issue per code; `overrides` replaces template fields of a code (e.g. the max length)."""
        found = []
        for code, count in self._counts.items():
            fields: dict[str, Any] = {"detail": ", ".join(self._details.get(code, []))}
            fields.update((overrides or {}).get(code, {}))
            found.append(make_issue(code, count=count, examples=self._examples[code], **fields))
        return found
