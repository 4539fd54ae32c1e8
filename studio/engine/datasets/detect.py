"""Which format a file is in, judged by its content (the extension is only a hint).

Only the head of the file is read, so this is fast for any size. Problems that make the file unreadable
as a whole are raised as a FileProblem carrying the issue to report.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from studio.engine.datasets.encoding import HEAD_BYTES, Encoding, detect_encoding
from studio.engine.datasets.issues import Issue, make_issue
from studio.engine.datasets.schemas import KNOWN_COLUMNS

FORMATS = ("jsonl", "json", "csv", "txt", "parquet")
EXTENSIONS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".csv": "csv",
    ".tsv": "csv",
    ".tab": "csv",
    ".txt": "txt",
    ".text": "txt",
    ".md": "txt",
    ".parquet": "parquet",
    ".pq": "parquet",
}
FORMAT_NAMES = {
    "jsonl": "JSON Lines",
    "json": "JSON",
    "csv": "CSV",
    "txt": "plain text",
    "parquet": "Parquet",
}
_FOREIGN_MAGIC = {
    b"PK\x03\x04": "Excel, Word or zip",
    b"\x1f\x8b": "gzip-compressed",
    b"%PDF": "PDF",
    b"\xd0\xcf\x11\xe0": "old Microsoft Office",
    b"SQLite format 3": "SQLite database",
}
_TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
_BLANK_LINE = re.compile(r"\n[ \t\r]*\n")


class FileProblem(Exception):  # noqa: N818 - a reported condition, not a crash
    """The file cannot be used at all; `issue` says why in plain language."""

    def __init__(self, issue: Issue) -> None:
        super().__init__(issue.message)
        self.issue = issue


@dataclass(frozen=True)
class Detection:
    """What the head of a file says about how to read the rest of it."""

    path: Path
    format: str
    encoding: Encoding | None
    size: int
    delimiter: str = ","
    has_header: bool = True
    text_mode: str = "documents"
    issues: tuple[Issue, ...] = field(default=())


def read_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    """The first bytes of a file; every way this can fail becomes a FileProblem."""
    try:
        if path.is_dir():
            raise FileProblem(make_issue("is_directory"))
        with path.open("rb") as handle:
            return handle.read(size)
    except FileNotFoundError:
        raise FileProblem(make_issue("not_found")) from None
    except PermissionError:
        raise FileProblem(make_issue("unreadable")) from None
    except IsADirectoryError:
        raise FileProblem(make_issue("is_directory")) from None
    except OSError as exc:
        raise FileProblem(make_issue("read_failed", detail=exc.strerror or str(exc))) from None


def detect(path: str | Path) -> Detection:
    path = Path(path)
    head = read_head(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise FileProblem(make_issue("read_failed", detail=exc.strerror or str(exc))) from None
    if not head:
        raise FileProblem(make_issue("empty_file"))
    if head.startswith(b"PAR1"):
        return _with_extension_check(Detection(path, "parquet", None, size))
    for magic, name in _FOREIGN_MAGIC.items():
        if head.startswith(magic):
            raise FileProblem(make_issue("unsupported_format", detail=name))
    encoding = detect_encoding(head)
    if encoding is None:
        raise FileProblem(make_issue("binary_file"))
    text = head.decode(encoding.name, errors="ignore")
    if not text.strip():
        raise FileProblem(make_issue("empty_file"))
    complete = len(head) >= size
    issues = [make_issue("encoding_fallback", detail=encoding.label)] if encoding.fallback else []
    detection = _detect_text(path, text, encoding, size, complete, tuple(issues))
    return _with_extension_check(detection)


def _detect_text(
    path: Path, text: str, encoding: Encoding, size: int, complete: bool, issues: tuple[Issue, ...]
) -> Detection:
    stripped = text.lstrip()
    if stripped[:1] in "[{":
        return Detection(path, _json_or_jsonl(text, complete), encoding, size, issues=issues)
    if EXTENSIONS.get(path.suffix.lower()) in {"json", "jsonl"} and _json_or_jsonl(text, complete) == "jsonl":
        return Detection(path, "jsonl", encoding, size, issues=issues)  # e.g. one number or string per line
    dialect = _sniff_csv(text, complete, path.suffix.lower())
    if dialect is not None:
        delimiter, header = dialect
        return Detection(path, "csv", encoding, size, delimiter=delimiter, has_header=header, issues=issues)
    mode = "documents" if _BLANK_LINE.search(text) else "chunks"
    return Detection(path, "txt", encoding, size, text_mode=mode, issues=issues)


def _json_or_jsonl(text: str, complete: bool) -> str:
    """JSON Lines has one complete value per line; anything else starting with [ or { is one JSON document."""
    lines = text.splitlines()
    if not complete:
        lines = lines[:-1]  # the last line may be cut off by the head limit
    values = [line for line in lines[:50] if line.strip()]
    if len(values) == 1 and complete and _parses(values[0]) and values[0].lstrip()[:1] not in "[{":
        return "jsonl"
    if len(values) < 2:
        return "json"
    parsed = sum(1 for line in values if _parses(line))
    return "jsonl" if parsed >= max(2, len(values) // 2) else "json"


def _parses(line: str) -> bool:
    try:
        json.loads(line)
    except (ValueError, RecursionError):  # RecursionError: nested thousands of levels deep
        return False
    return True


def _sniff_csv(text: str, complete: bool, suffix: str) -> tuple[str, bool] | None:
    """(delimiter, has header) when the head is tabular, else None (then it is plain text).

    A .csv/.tsv name is trusted (ragged rows are reported later); otherwise the head must look like a
    table: at least two columns and three rows, with a consistent number of fields.
    """
    lines = text.splitlines(keepends=True)
    if not complete and len(lines) > 1:
        lines = lines[:-1]
    sample = "".join(lines[:200])
    declared = _TABLE_SUFFIXES.get(suffix)
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=",\t;|").delimiter
    except csv.Error:
        if declared is None:
            return None
        delimiter = declared
    rows = [row for row in csv.reader(sample.splitlines(), delimiter=delimiter) if row]
    if not rows:
        return None
    if declared is None:
        widths = [len(row) for row in rows]
        consistent = sum(1 for width in widths if width == widths[0]) / len(widths)
        if widths[0] < 2 or len(rows) < 3 or consistent < 0.8:
            return None
    header = _has_header(sample, rows[0])
    if suffix == ".txt" and not (consistent == 1.0 and (header or '"' in sample)):
        return None  # prose in a .txt (commas, full stops) is text to learn from, not a table
    return delimiter, header


def _has_header(sample: str, first: list[str]) -> bool:
    if any(cell.strip().lower() in KNOWN_COLUMNS for cell in first):
        return True
    try:
        return csv.Sniffer().has_header(sample)
    except csv.Error:
        return False


def _with_extension_check(detection: Detection) -> Detection:
    expected = EXTENSIONS.get(detection.path.suffix.lower())
    if expected is None or expected == detection.format:
        return detection
    note = make_issue(
        "wrong_extension",
        detail=f"'{detection.path.suffix}' but holds {FORMAT_NAMES[detection.format]}, read as that",
    )
    return replace(detection, issues=(*detection.issues, note))
