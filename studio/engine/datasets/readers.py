"""Streaming row readers, one per format, with bounded memory and line numbers for every row.

A reader yields RawRow objects: the decoded value of one row, or the reason it could not be read. Failures
that end the whole read (a broken JSON document, a file that vanished) raise FileProblem.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from studio.engine.datasets.detect import Detection, FileProblem
from studio.engine.datasets.issues import make_issue
from studio.engine.datasets.jsonstream import MAX_ITEM_CHARS, JsonStream, JsonStreamError
from studio.engine.datasets.schemas import RECORD_KEYS

MAX_ROW_CHARS = 16 << 20
CHUNK_CHARS = 2000
_MAX_DOCUMENT_CHARS = 4 * CHUNK_CHARS
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_PARQUET_BATCH = 256  # rows per Arrow batch: a batch of wide rows stays a bounded read


@dataclass(slots=True)
class RawRow:
    """One row as read. `problem` is an issue code when the row could not be read."""

    line: int
    value: Any = None
    problem: str | None = None
    detail: str = ""


class RowReader:
    """Iterates the rows of a detected file and reports how far it has got (0..1).

    `columns` names the columns the schema maps: a Parquet file is then read column by column for those
    alone, so a wide table (images, embeddings, raw HTML beside the text) costs only what training uses.
    """

    def __init__(self, detection: Detection, columns: list[str] | None = None) -> None:
        self.detection = detection
        self.columns = columns
        self._raw: BinaryIO | None = None
        self._rows_done = 0
        self._rows_total = 0

    def progress(self) -> float:
        if self.detection.format == "parquet":
            return self._rows_done / self._rows_total if self._rows_total else 0.0
        if self._raw is None or self._raw.closed or not self.detection.size:
            return 0.0
        return min(1.0, self._raw.tell() / self.detection.size)

    def __iter__(self) -> Iterator[RawRow]:
        try:
            if self.detection.format == "parquet":
                yield from self._parquet()
                return
            with _open_binary(self.detection.path) as raw:
                self._raw = raw
                assert self.detection.encoding is not None
                text = io.TextIOWrapper(raw, encoding=self.detection.encoding.name, errors="replace", newline="")
                reader = {"jsonl": _jsonl, "json": _json, "csv": self._csv, "txt": self._txt}
                yield from reader[self.detection.format](text)
        except FileProblem:
            raise
        except PermissionError:
            raise FileProblem(make_issue("unreadable")) from None
        except OSError as exc:
            raise FileProblem(make_issue("read_failed", detail=exc.strerror or str(exc))) from None

    def _parquet(self) -> Iterator[RawRow]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(self.detection.path)
            self._rows_total = parquet.metadata.num_rows
            present = set(parquet.schema_arrow.names)
            columns = [name for name in self.columns if name in present] if self.columns else None
            line = 0
            for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH, columns=columns):
                for value in batch.to_pylist():
                    line += 1
                    self._rows_done = line
                    if _value_chars(value) > MAX_ROW_CHARS:
                        yield RawRow(line, problem="row_too_large", detail=f"{MAX_ROW_CHARS >> 20} MB")
                    else:
                        yield RawRow(line, value)
        except (pa.ArrowException, ValueError) as exc:
            raise FileProblem(make_issue("parquet_invalid", detail=str(exc).splitlines()[0])) from None

    def _csv(self, text: io.TextIOWrapper) -> Iterator[RawRow]:
        csv.field_size_limit(MAX_ROW_CHARS)
        reader = csv.reader(text, delimiter=self.detection.delimiter)
        columns: list[str] | None = None
        previous_end = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield RawRow(previous_end + 1, problem="csv_bad_row", detail=str(exc))
                previous_end = reader.line_num
                continue
            line, previous_end = previous_end + 1, reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if columns is None:
                if self.detection.has_header:
                    columns = _unique_columns(row)
                    continue
                columns = [f"column_{index + 1}" for index in range(len(row))]
            if len(row) > len(columns) and not any(cell.strip() for cell in row[len(columns) :]):
                row = row[: len(columns)]
            if len(row) != len(columns):
                yield RawRow(line, row, problem="csv_bad_row", detail=f"{len(row)} columns, expected {len(columns)}")
                continue
            yield RawRow(line, dict(zip(columns, row, strict=True)))

    def _txt(self, text: io.TextIOWrapper) -> Iterator[RawRow]:
        if self.detection.text_mode == "documents":
            yield from _documents(text)
        else:
            yield from _chunks(text)


def _value_chars(value: Any) -> int:
    """The characters (or bytes) of text held in one decoded row, however deeply it nests."""
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, dict):
        return sum(_value_chars(item) for item in value.values())
    if isinstance(value, list | tuple):
        return sum(_value_chars(item) for item in value)
    return 0


def _open_binary(path: Path) -> BinaryIO:
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise FileProblem(make_issue("read_failed", detail="the file disappeared")) from None


def _unique_columns(header: list[str]) -> list[str]:
    columns: list[str] = []
    for index, name in enumerate(header):
        name = name.strip() or f"column_{index + 1}"
        while name in columns:
            name += "_"
        columns.append(name)
    return columns


def _jsonl(text: io.TextIOWrapper) -> Iterator[RawRow]:
    line = 0
    while True:
        chunk = text.readline(MAX_ROW_CHARS + 1)
        if not chunk:
            return
        line += 1
        if len(chunk) > MAX_ROW_CHARS and not chunk.endswith("\n"):
            while chunk and not chunk.endswith("\n"):
                chunk = text.readline(MAX_ROW_CHARS)
            yield RawRow(line, problem="row_too_large", detail=f"{MAX_ROW_CHARS >> 20} MB")
            continue
        if not chunk.strip():
            continue
        try:
            yield RawRow(line, json.loads(chunk))
        except ValueError as exc:
            yield RawRow(line, chunk, problem="bad_json_line", detail=getattr(exc, "msg", str(exc)).lower())
        except RecursionError:
            yield RawRow(line, chunk, problem="bad_json_line", detail="nested too deeply")


def _json(text: io.TextIOWrapper) -> Iterator[RawRow]:
    try:
        for line, value in JsonStream(text, RECORD_KEYS):
            yield RawRow(line, value)
    except JsonStreamError as exc:
        if exc.too_large:
            raise FileProblem(make_issue("item_too_large", detail=f"{MAX_ITEM_CHARS >> 20} MB")) from None
        raise FileProblem(make_issue("json_invalid", line=exc.line, detail=str(exc))) from None


def _documents(text: io.TextIOWrapper) -> Iterator[RawRow]:
    """Blank-line separated documents; very long ones are cut into chunks so none is absurdly long."""
    parts: list[str] = []
    start = line = 0
    while True:
        chunk = text.readline(CHUNK_CHARS)
        if chunk.endswith("\n") or not chunk:
            line += 1
        if chunk.strip():
            if not parts:
                start = line
            parts.append(chunk)
            if sum(map(len, parts)) < _MAX_DOCUMENT_CHARS:
                continue
        if parts:
            document = "".join(parts).replace("\r\n", "\n").strip()
            for piece in _split(document) if len(document) >= _MAX_DOCUMENT_CHARS else [document]:
                yield RawRow(start, {"text": piece})
            parts = []
        if not chunk:
            return


def _chunks(text: io.TextIOWrapper) -> Iterator[RawRow]:
    """Running text without blank lines, cut into pieces of about CHUNK_CHARS at sentence ends."""
    pending = ""
    start = line = 1
    while True:
        chunk = text.readline(CHUNK_CHARS)
        if not chunk:
            break
        if not pending.strip():
            start = line
        pending += chunk
        line += chunk.count("\n")
        if len(pending) >= CHUNK_CHARS:
            pieces = _split(pending)
            for piece in pieces[:-1]:
                yield RawRow(start, {"text": piece})
            # Keep the break between this remainder and the next read (the pieces are stripped).
            pending = (pieces[-1] if pieces else "") + (" " if pending[-1:].isspace() else "")
            start = line
    if pending.strip():
        yield RawRow(start, {"text": pending.strip()})


def _split(text: str) -> list[str]:
    """Pieces of at most about CHUNK_CHARS, broken after a sentence where possible."""
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(text):
        while len(sentence) > CHUNK_CHARS:
            cut = sentence.rfind(" ", 0, CHUNK_CHARS)
            cut = cut if cut > CHUNK_CHARS // 2 else CHUNK_CHARS
            if current:
                pieces.append(current.strip())
                current = ""
            pieces.append(sentence[:cut].strip())
            sentence = sentence[cut:]
        if current and len(current) + len(sentence) + 1 > CHUNK_CHARS:
            pieces.append(current.strip())
            current = ""
        current = f"{current} {sentence}" if current else sentence
    if current.strip():
        pieces.append(current.strip())
    return [piece for piece in pieces if piece]
