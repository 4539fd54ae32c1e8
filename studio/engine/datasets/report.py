"""The validation report: one documented JSON structure (docs/datasets.md) and a readable rendering."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from studio.engine.datasets.issues import Issue
from studio.engine.datasets.stats import TokenStats

REPORT_VERSION = 1
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}
_SEVERITY_MARK = {"error": "✗", "warning": "!", "info": "i"}


@dataclass
class SplitProposal:
    """How many examples train and how many are held out to measure progress."""

    train: int
    eval: int
    eval_fraction: float
    seed: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ValidationReport:
    path: str
    format: str | None = None
    encoding: str | None = None
    schema: str | None = None
    kind: str | None = None
    mapping: dict[str, str] = field(default_factory=dict)
    profile: str | None = None
    rows_read: int = 0
    rows_usable: int = 0
    rows_skipped: int = 0
    duplicates_removed: int = 0
    issues: list[Issue] = field(default_factory=list)
    stats: TokenStats | None = None
    split: SplitProposal | None = None
    content_hash: str | None = None
    seconds: float = 0.0

    @property
    def usable(self) -> bool:
        """Usable: at least one good example and no error (warnings are fine)."""
        return self.rows_usable > 0 and not self.errors

    @property
    def errors(self) -> list[Issue]:
        return [issue for issue in self.issues if issue.severity == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [issue for issue in self.issues if issue.severity == "warning"]

    def issue(self, code: str) -> Issue | None:
        return next((issue for issue in self.issues if issue.code == code), None)

    def sort_issues(self) -> None:
        self.issues.sort(key=lambda issue: (_SEVERITY_ORDER[issue.severity], -issue.count))

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "path": self.path,
            "usable": self.usable,
            "format": self.format,
            "encoding": self.encoding,
            "schema": self.schema,
            "kind": self.kind,
            "mapping": dict(self.mapping),
            "profile": self.profile,
            "rows_read": self.rows_read,
            "rows_usable": self.rows_usable,
            "rows_skipped": self.rows_skipped,
            "duplicates_removed": self.duplicates_removed,
            "counts": {severity: sum(1 for i in self.issues if i.severity == severity) for severity in _SEVERITY_ORDER},
            "issues": [issue.to_dict() for issue in self.issues],
            "stats": self.stats.to_dict() if self.stats else None,
            "split": self.split.to_dict() if self.split else None,
            "content_hash": self.content_hash,
            "seconds": round(self.seconds, 3),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationReport:
        fields = {k: v for k, v in data.items() if k not in {"version", "usable", "counts"}}
        fields["issues"] = [Issue.from_dict(issue) for issue in data.get("issues", [])]
        fields["stats"] = TokenStats.from_dict(data["stats"]) if data.get("stats") else None
        fields["split"] = SplitProposal(**data["split"]) if data.get("split") else None
        return cls(**fields)

    def render(self) -> str:
        """Plain text for a terminal or a log: verdict, numbers, then each issue with its fix."""
        verdict = "Usable" if self.usable else "Not usable"
        lines = [f"{verdict}: {self.path}"]
        if self.format:
            described = f"{self.format}, {self.encoding}" if self.encoding else self.format
            lines.append(f"  Format: {described}; layout: {self.schema or 'unknown'}")
        if self.mapping:
            lines.append("  Columns: " + ", ".join(f"{col} → {role}" for col, role in self.mapping.items()))
        lines.append(
            f"  Rows: {self.rows_read} read, {self.rows_usable} usable, {self.rows_skipped} skipped"
            + (f", {self.duplicates_removed} duplicates left out" if self.duplicates_removed else "")
        )
        if self.stats:
            s = self.stats
            lines.append(
                f"  Tokens: {s.total_tokens:,} in total; per example p50 {s.p50}, p90 {s.p90}, p99 {s.p99}, max {s.max}"
            )
            if s.max_length:
                lines.append(f"  Over max length {s.max_length}: {s.over_max_length} ({s.over_max_length_share:.1%})")
            lines.append(f"  Suggested max length: {s.suggested_max_length}")
        if self.split:
            lines.append(f"  Split: {self.split.train} train / {self.split.eval} validation ({self.split.reason})")
        for issue in self.issues:
            lines.append(f"{_SEVERITY_MARK[issue.severity]} {issue.message}")
            if issue.suggestion:
                lines.append(f"    → {issue.suggestion}")
            for example in issue.examples[:3]:
                where = f"line {example['line']}" if example.get("line") else "row"
                text = example_text(example)
                lines.append(f"    {where}: {text}" if text else f"    {where}")
        return "\n".join(lines)


def example_text(example: dict[str, Any]) -> str:
    """What to print for one example row: its excerpt, led by the detail when both exist ("like line 12")."""
    excerpt, detail = example.get("excerpt", ""), example.get("detail", "")
    return f"({detail}) {excerpt}" if excerpt and detail else excerpt or detail
