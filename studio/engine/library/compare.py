"""Side-by-side comparison of 2 to 5 runs: curves on a shared axis, a metrics table, a config diff.

Everything is read from the registry rows and each run's events.jsonl, so a comparison works for
finished, stopped and still-running runs alike. The result is plain data: the CLI prints it as JSON
and the GUI draws it, the best value of each metric already marked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from studio.engine.errors import StudioError
from studio.engine.events import Eval, EventParseError, Progress, parse_event
from studio.engine.runs.folders import events_file
from studio.engine.runs.registry import RunRecord

Axis = Literal["step", "tokens"]
MIN_RUNS, MAX_RUNS = 2, 5
# Fields that differ between any two runs and say nothing about how they trained.
_IGNORED_CONFIG = frozenset({"schema_version"})


@dataclass(frozen=True)
class Curves:
    """One run's training and held-out loss as (x, loss) points, x being the step or the tokens seen."""

    run_id: str
    label: str
    axis: Axis
    loss: list[tuple[float, float]]
    eval_loss: list[tuple[float, float]]


@dataclass(frozen=True)
class Metric:
    key: str
    label: str
    better: Literal["lower", "higher"] | None


METRICS: tuple[Metric, ...] = (
    Metric("best_eval_loss", "Best held-out loss", "lower"),
    Metric("eval_loss", "Final held-out loss", "lower"),
    Metric("final_loss", "Final training loss", "lower"),
    Metric("perplexity_tuned", "Held-out perplexity (quality check)", "lower"),
    Metric("steps", "Steps", None),
    Metric("tokens_seen", "Tokens seen", None),
    Metric("tokens_per_s", "Tokens per second", "higher"),
    Metric("wall_s", "Wall time (s)", "lower"),
    Metric("peak_memory", "Peak memory", "lower"),
)


@dataclass(frozen=True)
class MetricsTable:
    metrics: tuple[Metric, ...]
    run_ids: list[str]
    values: dict[str, dict[str, float | None]]  # metric key -> run id -> value
    best: dict[str, list[str]]  # metric key -> run ids holding the best value (ties share it)


@dataclass(frozen=True)
class DiffRow:
    field: str
    values: dict[str, Any]  # run id -> value


@dataclass(frozen=True)
class Comparison:
    runs: list[RunRecord]
    axis: Axis
    curves: list[Curves]
    metrics: MetricsTable
    config_diff: list[DiffRow] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The stable shape of `studio compare --json`."""
        return {
            "axis": self.axis,
            "runs": [{"id": r.id, "name": r.name, "version": r.version, "status": r.status}
                     for r in self.runs],
            "curves": [{"run_id": c.run_id, "label": c.label, "loss": c.loss, "eval_loss": c.eval_loss}
                       for c in self.curves],
            "metrics": [
                {"key": m.key, "label": m.label, "better": m.better, "values": self.metrics.values[m.key],
                 "best": self.metrics.best[m.key]}
                for m in self.metrics.metrics
            ],
            "config_diff": [{"field": row.field, "values": row.values} for row in self.config_diff],
        }


def run_label(run: RunRecord) -> str:
    return f"{run.name} {run.version}"


def read_events(run_dir: Path) -> list[Any]:
    """All valid events of a run; malformed lines are skipped like every reader of the stream does."""
    path = events_file(run_dir)
    found = []
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.strip():
                    try:
                        found.append(parse_event(line))
                    except EventParseError:
                        continue
    except OSError:
        return []
    return found


def load_curves(run: RunRecord, axis: Axis = "step") -> Curves:
    """A resumed run repeats steps after its checkpoint; the later value of a step wins."""
    loss: dict[int, float] = {}
    evals: dict[int, float] = {}
    tokens_at: dict[int, int] = {}
    for event in read_events(run.run_dir):
        if isinstance(event, Progress):
            if event.loss is not None and math.isfinite(event.loss):
                loss[event.step] = event.loss
            if event.tokens_seen:
                tokens_at[event.step] = event.tokens_seen
        elif isinstance(event, Eval) and math.isfinite(event.eval_loss):
            evals[event.step] = event.eval_loss
            seen = event.metrics.get("num_input_tokens_seen") or event.extra.get("tokens_seen")
            if isinstance(seen, int | float) and seen > 0:
                tokens_at.setdefault(event.step, int(seen))

    def x_of(step: int) -> float | None:
        if axis == "step":
            return float(step)
        if step in tokens_at:
            return float(tokens_at[step])
        earlier = [s for s in tokens_at if s <= step]
        return float(tokens_at[max(earlier)]) if earlier else None

    def points(series: dict[int, float]) -> list[tuple[float, float]]:
        pairs = ((x_of(step), value) for step, value in sorted(series.items()))
        return [(x, y) for x, y in pairs if x is not None]

    return Curves(run.id, run_label(run), axis, points(loss), points(evals))


def run_metrics(run: RunRecord) -> dict[str, float | None]:
    """The comparable numbers of one run: its final metrics, peak memory and quality report if any."""
    from studio.engine.library.quality import load_report

    metrics = run.metrics or {}
    values: dict[str, float | None] = {m.key: _number(metrics.get(m.key)) for m in METRICS}
    values["peak_memory"] = _number(run.peak_memory) or _number(metrics.get("peak_rss"))
    train_s, tokens = _number(metrics.get("train_s")), _number(metrics.get("tokens_seen"))
    values["tokens_per_s"] = round(tokens / train_s, 1) if tokens and train_s else None
    if values["best_eval_loss"] is None:
        evals = [e.eval_loss for e in read_events(run.run_dir)
                 if isinstance(e, Eval) and math.isfinite(e.eval_loss)]
        values["best_eval_loss"] = min(evals) if evals else None
        if values["eval_loss"] is None and evals:
            values["eval_loss"] = evals[-1]
    report = load_report(run.run_dir)
    values["perplexity_tuned"] = report.tuned.perplexity if report and report.tuned else None
    return values


def metrics_table(runs: Sequence[RunRecord]) -> MetricsTable:
    per_run = {run.id: run_metrics(run) for run in runs}
    values = {m.key: {run.id: per_run[run.id][m.key] for run in runs} for m in METRICS}
    best: dict[str, list[str]] = {}
    for metric in METRICS:
        present = {rid: v for rid, v in values[metric.key].items() if v is not None}
        if metric.better is None or len(present) < 2:
            best[metric.key] = []
            continue
        target = min(present.values()) if metric.better == "lower" else max(present.values())
        best[metric.key] = [rid for rid, v in present.items() if v == target]
    return MetricsTable(METRICS, [run.id for run in runs], values, best)


def config_diff(runs: Sequence[RunRecord]) -> list[DiffRow]:
    """Only the settings whose values are not the same in every run, in the config's own field order."""
    keys: list[str] = []
    for run in runs:
        keys += [key for key in run.config if key not in keys and key not in _IGNORED_CONFIG]
    rows = []
    for key in keys:
        values = {run.id: run.config.get(key) for run in runs}
        if len({repr(v) for v in values.values()}) > 1:
            rows.append(DiffRow(key, values))
    return rows


def compare_runs(runs: Sequence[RunRecord], axis: Axis = "step") -> Comparison:
    if not MIN_RUNS <= len(runs) <= MAX_RUNS or len({r.id for r in runs}) != len(runs):
        raise StudioError(
            what=f"Studio compares {MIN_RUNS} to {MAX_RUNS} different runs; {len(runs)} were given.",
            why="Fewer than two leaves nothing to compare; more than five makes the charts unreadable.",
            actions=["Pick between two and five runs, each once.", "Run `studio runs` to see their ids."],
            code="compare_run_count",
        )
    runs = list(runs)
    curves = [load_curves(run, axis) for run in runs]
    return Comparison(runs, axis, curves, metrics_table(runs), config_diff(runs))


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
