"""Planning for a model, a use case and a dataset: the one workflow behind `studio plan`, `studio train`,
the cloud offers and the wizard's review page.

The planner itself (plan.py) is a pure function over plain data; this module gathers that data (the model's
facts, this machine's profile, the dataset's token statistics measured with the model's tokenizer), so every
caller plans from the same inputs and shows the same notes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.engine.datasets import DatasetOptions, ValidationReport, unusable_error, validate_file
from studio.engine.hardware import HardwareProfile, probe
from studio.engine.models.facts import ModelFacts, read_model_facts
from studio.engine.planner.plan import plan
from studio.engine.planner.types import DatasetStats, Plan
from studio.engine.profiles import Profile, get_profile
from studio.engine.progress import QUIET, Span, TaskContext

NO_TOKEN_STATS = "The dataset's token statistics could not be measured; the plan ignores them."


@dataclass(frozen=True)
class Planned:
    """The planner's answer with the inputs it used, so an estimate can be redone for edited settings."""

    plan: Plan
    facts: ModelFacts
    hardware: HardwareProfile
    stats: DatasetStats | None
    notes: list[str] = field(default_factory=list)


def plan_for(
    model: str | None,
    profile: str | None,
    dataset: str | Path | ValidationReport | None = None,
    *,
    hardware: HardwareProfile | None = None,
    hourly_price: float | None = None,
    grid_g_per_kwh: float = 400.0,
    overrides: dict[str, Any] | None = None,
    facts: ModelFacts | None = None,
    task: TaskContext = QUIET,
) -> Planned:
    """Plan training `model` ("builtin" when None) for `profile` on `dataset`: a file, which is checked here
    (a StudioError when it is unusable), or the report of a check already done (the wizard's data page).
    `hardware` and `facts` skip probing this machine and reading the model's files again."""
    steps = Span(task)
    steps.report("Reading the model's facts", 0.1)
    facts = facts or read_model_facts(model or "builtin")
    use_case = get_profile(profile)
    steps.report("Checking this computer", 0.3)
    hardware = hardware or probe()
    fixed = dict(overrides or {})
    notes: list[str] = []
    if isinstance(dataset, ValidationReport):
        stats = token_stats(dataset)
    elif dataset is not None:
        steps.report("Measuring the dataset", 0.4)
        fixed.setdefault("dataset_path", str(Path(dataset).resolve()))
        stats, notes = measure_dataset(dataset, facts, use_case, task=steps.sub(0.4, 0.9))
    else:
        stats = None
    steps.report("Choosing settings", 0.95)
    result = plan(hardware, facts, use_case, stats, hourly_price=hourly_price, grid_g_per_kwh=grid_g_per_kwh,
                  overrides=fixed)
    steps.report("Done", 1.0)
    return Planned(result, facts, hardware, stats, notes)


def measure_dataset(
    dataset: str | Path, facts: ModelFacts, profile: Profile, *, task: TaskContext = QUIET
) -> tuple[DatasetStats | None, list[str]]:
    """The token statistics the planner uses, measured with the model's tokenizer at the length the profile
    suggests; a StudioError when the file is unusable, a note when it has no statistics."""
    options = DatasetOptions(
        tokenizer_path=Path(facts.path or ""),
        max_length=min(profile.max_length_hint, facts.context_length),
        profile=profile.id,
    )
    report = validate_file(dataset, options, task=task)
    if not report.usable:
        raise unusable_error(report)
    stats = token_stats(report)
    return stats, [] if stats is not None else [NO_TOKEN_STATS]


def token_stats(report: ValidationReport) -> DatasetStats | None:
    """The planner's view of a report's token statistics (None when they were not measured)."""
    measured = report.stats
    if measured is None:
        return None
    return DatasetStats(
        n_examples=measured.examples,
        p50_tokens=measured.p50,
        p90_tokens=measured.p90,
        p99_tokens=measured.p99,
        max_tokens=measured.max,
        total_tokens=measured.total_tokens,
    )
