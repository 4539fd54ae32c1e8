"""A quick look at a file's head: format, encoding, layout, columns and the proposed column mapping.

This is what the wizard shows the moment a file is dropped, before the full validation has run, and what
the full validation starts from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from studio.engine.datasets.detect import Detection, FileProblem, detect
from studio.engine.datasets.issues import Issue, make_issue
from studio.engine.datasets.readers import RowReader
from studio.engine.datasets.schemas import LABELS, Schema, check_mapping, kind_of, propose_schema

HEAD_ROWS = 200
PREVIEW_ROWS = 5


@dataclass
class Inspection:
    path: str
    format: str | None = None
    encoding: str | None = None
    schema: str | None = None
    schema_label: str | None = None
    kind: str | None = None
    columns: list[str] = field(default_factory=list)
    mapping: dict[str, str] = field(default_factory=dict)
    guessed: bool = False
    issues: list[Issue] = field(default_factory=list)
    sample_rows: list[Any] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(issue.severity == "error" for issue in self.issues)

    @property
    def warnings(self) -> list[str]:
        return [issue.message for issue in self.issues if issue.severity != "info"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok,
            "format": self.format,
            "encoding": self.encoding,
            "schema": self.schema,
            "schema_label": self.schema_label,
            "kind": self.kind,
            "columns": list(self.columns),
            "mapping": dict(self.mapping),
            "guessed": self.guessed,
            "issues": [issue.to_dict() for issue in self.issues],
            "sample_rows": list(self.sample_rows),
        }


def inspect_file(path: str | Path, *, mapping: dict[str, str] | None = None) -> Inspection:
    """Read only the head of the file; never raises for a bad file (the issues say what is wrong)."""
    inspection = Inspection(path=str(path))
    try:
        detection = detect(path)
        inspection.format = detection.format
        inspection.encoding = detection.encoding.label if detection.encoding else None
        inspection.issues.extend(detection.issues)
        rows = head_rows(detection)
    except FileProblem as problem:
        inspection.issues.append(problem.issue)
        return inspection
    inspection.sample_rows = rows[:PREVIEW_ROWS]
    inspection.columns = columns_of(rows)
    schema, guessed, issue = choose_schema(rows, mapping)
    if issue is not None:
        inspection.issues.append(issue)
    if schema is not None:
        inspection.schema, inspection.schema_label, inspection.kind = schema.name, schema.label, schema.kind
        inspection.mapping, inspection.guessed = dict(schema.mapping), guessed
    return inspection


def head_rows(detection: Detection, limit: int = HEAD_ROWS) -> list[Any]:
    """The values of the first readable rows (rows that failed to read are left out)."""
    return [row.value for row in islice(RowReader(detection), limit * 2) if row.problem is None][:limit]


def columns_of(rows: list[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        if isinstance(row, dict):
            seen.update(dict.fromkeys(row))
    return list(seen)


def choose_schema(rows: list[Any], mapping: dict[str, str] | None) -> tuple[Schema | None, bool, Issue | None]:
    """The user's mapping when given and valid, else the recognized or guessed layout, plus any issue."""
    if mapping:
        problem = check_mapping(mapping, columns_of(rows))
        if problem:
            return None, False, make_issue("bad_mapping", detail=problem)
        return Schema("custom", LABELS["custom"], kind_of(mapping), dict(mapping)), False, None
    if not rows:
        return None, False, make_issue("no_rows")
    schema, guessed = propose_schema(rows)
    if schema is None:
        return None, False, make_issue("unknown_schema", detail=", ".join(columns_of(rows)) or "none")
    if guessed:
        described = ", ".join(f"{column} → {role}" for column, role in schema.mapping.items())
        return schema, True, make_issue("guessed_mapping", detail=described)
    return schema, False, None
