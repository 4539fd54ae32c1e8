"""Fixtures for the dataset tests: small file writers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """write("name.jsonl", text_or_bytes[, encoding]) -> path"""

    def _write(name: str, content: str | bytes, encoding: str = "utf-8") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            content = content.encode(encoding)
        path.write_bytes(content)
        return path

    return _write


@pytest.fixture
def write_jsonl(write: Callable[..., Path]) -> Callable[..., Path]:
    """write_jsonl("name.jsonl", rows) -> path, one JSON value per line."""

    def _write_jsonl(name: str, rows: list[object]) -> Path:
        return write(name, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))

    return _write_jsonl
