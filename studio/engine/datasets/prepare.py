"""The training-ready dataset: normalized, de-duplicated, split, stored as Arrow and cached by content hash.

The validation pass writes kept examples straight to an Arrow stream file (bounded memory); the split is
then two index selections saved with `save_to_disk`. A finished folder carries a COMPLETE marker, so an
interrupted preparation is never mistaken for a finished one.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.engine.datasets.cache import (
    cache_key,
    content_hash,
    datasets_cache,
    read_json,
    tokenizer_identity,
    write_atomic,
)
from studio.engine.datasets.options import DatasetOptions
from studio.engine.datasets.report import ValidationReport
from studio.engine.datasets.validate import CHECKS_VERSION, scan
from studio.engine.errors import ExitCode, StudioError
from studio.engine.progress import QUIET, TaskContext

if TYPE_CHECKING:
    import pyarrow as pa
    from datasets import Dataset

_BATCH = 1000
_COMPLETE = "COMPLETE"


@dataclass
class PreparedDataset:
    train: Dataset
    eval: Dataset | None
    report: ValidationReport
    content_hash: str
    folder: Path


def prepare_dataset(
    path: str | Path,
    options: DatasetOptions = DatasetOptions(),
    *,
    task: TaskContext = QUIET,
) -> PreparedDataset:
    """Validate and normalize `path` once; later calls with an unchanged file load the cached result."""
    path = Path(path)
    try:
        digest = content_hash(path)
    except OSError:
        digest = None  # the scan below reports exactly what is wrong with the path
    key = cache_key(
        "prepared",
        digest,
        options.mapping,
        options.eval_fraction,
        options.seed,
        tokenizer_identity(options.tokenizer_path),
        options.max_length,
        options.profile,
        CHECKS_VERSION,  # a file read differently (a new layout) is prepared again
    )
    folder = datasets_cache() / "prepared" / key
    if digest is not None:
        cached = _cached(folder, task)
        if cached is not None:
            return cached
    # Two runs may prepare the same file at once: one prepares, the other waits for the lock and reuses.
    with _lock(folder):
        prepared = _cached(folder, task) if digest is not None else None
        if prepared is None:
            _build(
                folder,
                lambda sink: scan(path, options, task=task, sink=sink),
            )
            prepared = _load(folder)
    if prepared is None:
        raise StudioError(
            what="Studio could not read back the prepared dataset.",
            why=str(folder),
            actions=["Try again; if it keeps failing, delete that folder."],
            code="cache_broken",
        )
    return prepared


def _cached(folder: Path, task: TaskContext) -> PreparedDataset | None:
    if not (folder / _COMPLETE).is_file():
        return None
    cached = _load(folder)
    if cached is not None:
        task.report("Dataset ready (unchanged since last time)", 1.0)
    return cached


def _lock(folder: Path) -> Any:
    """A file lock per cache key, beside (not inside) the folder it guards, so replacing it is safe."""
    from filelock import FileLock

    folder.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder.with_name(f"{folder.name}.lock")))


def _build(folder: Path, scan_into: Callable[[Callable[[dict[str, Any]], None]], ValidationReport]) -> None:
    """Prepare into a staging folder of its own, then move it into place in one rename."""
    staging = Path(tempfile.mkdtemp(prefix=f"{folder.name}.partial-", dir=folder.parent))
    try:
        writer = _ArrowRows(staging / "all.arrow")
        try:
            report = scan_into(writer.add)
        finally:
            writer.close()
        if not report.usable or report.content_hash is None:
            raise unusable_error(report)
        _split(staging, report)
        write_atomic(staging / "report.json", _json(report.to_dict()))
        (staging / _COMPLETE).touch()
        shutil.rmtree(folder, ignore_errors=True)  # a broken earlier result; no one reads it under the lock
        staging.rename(folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def unusable_error(report: ValidationReport) -> StudioError:
    """The StudioError for a report that is not usable, naming the main problem and its fix."""
    main = report.errors[0] if report.errors else None
    return StudioError(
        what=f"The dataset {Path(report.path).name} cannot be used for training."
        + (f" {main.message}" if main else ""),
        why=main.suggestion if main else "No usable examples were found.",
        actions=[
            "Run `studio validate` on the file to see every problem and the rows involved.",
            "Fix the file, or start with the sample dataset for your use case.",
        ],
        code="dataset_unusable",
        exit_code=ExitCode.DATASET_UNUSABLE,
    )


class _ArrowRows:
    """Appends normalized examples to an Arrow stream file in batches."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self._rows: list[dict[str, Any]] = []
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._schema: pa.Schema | None = None

    def add(self, example: dict[str, Any]) -> None:
        self._rows.append(example)
        if len(self._rows) >= _BATCH:
            self._flush()

    def close(self) -> None:
        self._flush()
        if self._writer is not None:
            self._writer.close()

    def _flush(self) -> None:
        import pyarrow as pa

        if not self._rows:
            return
        if self._writer is None:
            messages = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
            types = {"text": pa.string(), "label": pa.bool_()}  # every other column is a list of messages
            self._schema = pa.schema([(name, types.get(name, messages)) for name in self._rows[0]])
            self._writer = pa.ipc.new_stream(str(self.target), self._schema)
        self._writer.write_batch(pa.RecordBatch.from_pylist(self._rows, schema=self._schema))
        self._rows.clear()


def _split(staging: Path, report: ValidationReport) -> None:
    import numpy as np
    from datasets import Dataset

    everything = Dataset.from_file(str(staging / "all.arrow"))
    assert report.split is not None
    order = np.random.default_rng(report.split.seed).permutation(len(everything))
    held = np.sort(order[: report.split.eval])
    kept = np.sort(order[report.split.eval :])
    everything.select(kept).save_to_disk(str(staging / "train"))
    if len(held):
        everything.select(held).save_to_disk(str(staging / "eval"))
    del everything
    (staging / "all.arrow").unlink()


def _load(folder: Path) -> PreparedDataset | None:
    from datasets import Dataset

    data = read_json(folder / "report.json")
    if data is None:
        return None
    report = ValidationReport.from_dict(data)
    try:
        train = Dataset.load_from_disk(str(folder / "train"))
        evaluation = Dataset.load_from_disk(str(folder / "eval")) if (folder / "eval").is_dir() else None
    except (OSError, ValueError):
        return None
    return PreparedDataset(
        train=train, eval=evaluation, report=report, content_hash=report.content_hash or "", folder=folder
    )


def _json(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data, ensure_ascii=False)
