"""Streaming reader for one big JSON document: a list of records, or an object holding such a list.

`json.load` would hold the whole file (and its parsed objects) in memory; this decodes one item at a time
from a sliding buffer, keeping line numbers so the report can point at the right place.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TextIO

CHUNK_CHARS = 1 << 20
MAX_ITEM_CHARS = 32 << 20
_WHITESPACE = " \t\n\r"


class JsonStreamError(Exception):
    """The document is not valid JSON (or is cut short) at `line`."""

    def __init__(self, message: str, line: int, too_large: bool = False) -> None:
        super().__init__(message)
        self.line = line
        self.too_large = too_large


class JsonStream:
    """Yields (line, value) for each record of the document read from `handle`."""

    def __init__(self, handle: TextIO, record_keys: frozenset[str]) -> None:
        self._handle = handle
        self._record_keys = record_keys
        self._decoder = json.JSONDecoder()
        self._buf = ""
        self._pos = 0
        self._line = 1
        self._eof = False

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        self._skip_ws()
        first = self._peek()
        if first == "[":
            yield from self._array()
        elif first == "{":
            yield from self._object()
        else:
            raise JsonStreamError("the document does not start with [ or {", self._line)
        self._skip_ws()
        if self._peek():
            raise JsonStreamError("unexpected text after the end of the document", self._line)

    def _array(self) -> Iterator[tuple[int, Any]]:
        self._advance(1)
        self._skip_ws()
        if self._peek() == "]":
            self._advance(1)
            return
        while True:
            self._skip_ws()
            line = self._line
            yield line, self._value()
            self._skip_ws()
            char = self._peek()
            if char == ",":
                self._advance(1)
            elif char == "]":
                self._advance(1)
                return
            else:
                raise JsonStreamError(self._unexpected(char, "a comma or ]"), self._line)

    def _object(self) -> Iterator[tuple[int, Any]]:
        """Stream the first list-valued member, unless the object itself looks like a single record."""
        start_line = self._line
        self._advance(1)
        members: dict[str, Any] = {}
        streamed = False
        while True:
            self._skip_ws()
            char = self._peek()
            if char == "}":
                self._advance(1)
                break
            if members or streamed:
                if char != ",":
                    raise JsonStreamError(self._unexpected(char, "a comma or }"), self._line)
                self._advance(1)
                self._skip_ws()
            key = self._value()
            if not isinstance(key, str):
                raise JsonStreamError("an object key is not text", self._line)
            self._skip_ws()
            if self._peek() != ":":
                raise JsonStreamError(self._unexpected(self._peek(), "a colon"), self._line)
            self._advance(1)
            self._skip_ws()
            if not streamed and self._peek() == "[" and key.lower() not in self._record_keys:
                yield from self._array()
                streamed = True
                members[key] = None
            else:
                members[key] = self._value()
        if not streamed:
            yield start_line, members

    def _value(self) -> Any:
        while True:
            try:
                value, end = self._decoder.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                if self._eof:
                    raise JsonStreamError(_describe(exc, self._buf, self._pos), self._line) from None
                if len(self._buf) - self._pos > MAX_ITEM_CHARS:
                    raise JsonStreamError("item too large", self._line, too_large=True) from None
                self._fill()
                continue
            except RecursionError:
                raise JsonStreamError("nested too deeply", self._line) from None
            if end == len(self._buf) and not self._eof and not isinstance(value, (dict, list, str)):
                self._fill()  # a number or literal may continue in the next chunk
                continue
            self._advance(end - self._pos)
            return value

    def _peek(self) -> str:
        if self._pos >= len(self._buf) and not self._fill():
            return ""
        return self._buf[self._pos]

    def _skip_ws(self) -> None:
        while True:
            while self._pos < len(self._buf) and self._buf[self._pos] in _WHITESPACE:
                if self._buf[self._pos] == "\n":
                    self._line += 1
                self._pos += 1
            if self._pos < len(self._buf) or not self._fill():
                return

    def _advance(self, count: int) -> None:
        self._line += self._buf.count("\n", self._pos, self._pos + count)
        self._pos += count

    def _fill(self) -> bool:
        if self._eof:
            return False
        chunk = self._handle.read(CHUNK_CHARS)
        if not chunk:
            self._eof = True
            return False
        self._buf = self._buf[self._pos :] + chunk
        self._pos = 0
        return True

    @staticmethod
    def _unexpected(char: str, wanted: str) -> str:
        return f"expected {wanted} but found {char!r}" if char else f"the file ends where {wanted} was expected"


def _describe(exc: json.JSONDecodeError, buf: str, pos: int) -> str:
    if exc.pos >= len(buf) - 1 or "Unterminated" in exc.msg:
        return "the file ends in the middle of an item (is it cut short?)"
    return exc.msg.lower()
