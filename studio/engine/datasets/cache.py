"""Content-hash caching, so validating or preparing an unchanged file again is instant.

The hash covers the file's bytes. Hashing a large file still takes a moment, so the hash itself is
remembered per (path, size, modification time); any change to the file changes one of those.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from studio.engine.paths import cache_dir

CACHE_VERSION = 1
_READ_CHUNK = 1 << 20


def datasets_cache() -> Path:
    path = cache_dir() / "datasets"
    path.mkdir(parents=True, exist_ok=True)
    return path


def content_hash(path: Path) -> str:
    """blake2b of the file's bytes (hex, 32 characters)."""
    stat = path.stat()
    identity = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    memo = datasets_cache() / "hashes" / f"{_digest(identity)}.txt"
    try:
        return memo.read_text(encoding="utf-8").strip()
    except OSError:
        pass
    digest = hashlib.blake2b(digest_size=16)
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
    value = digest.hexdigest()
    with contextlib.suppress(OSError):  # a read-only cache only costs speed
        write_atomic(memo, value)
    return value


def cache_key(*parts: Any) -> str:
    """A stable key from the content hash and every setting that changes the result."""
    return _digest(json.dumps([CACHE_VERSION, *parts], sort_keys=True, default=str))


def tokenizer_identity(tokenizer_path: str | Path | None) -> str | None:
    """The tokenizer folder plus the size and time of its files, so a changed tokenizer misses the cache."""
    if tokenizer_path is None:
        return None
    folder = Path(tokenizer_path).resolve()
    stamps = []
    for name in ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "chat_template.jinja"):
        try:
            stat = (folder / name).stat()
        except OSError:
            continue
        stamps.append(f"{name}:{stat.st_size}:{stat.st_mtime_ns}")
    return f"{folder}|{'|'.join(stamps)}"


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temporary = Path(name)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()
