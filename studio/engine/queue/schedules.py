"""Recurring retraining: a schedule holds a recipe (a training config under a model line's name) and a
trigger, a cron expression ("0 3 * * *": every night at 3) or a watched dataset file. When it is due, a new
version of that line joins the queue; the queue runner later decides whether it becomes the active version.

A watched file counts as changed when its content (not just its timestamp) differs, has been left alone for
a moment (no half-written files) and still validates; a change that does not validate is reported once.
"""

from __future__ import annotations

import builtins  # Schedules.list shadows list inside the class
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.engine.errors import StudioError
from studio.engine.events import now_iso
from studio.engine.queue.store import QueueEntry, RunQueue, parse_time
from studio.engine.runs.notices import add_notice
from studio.engine.runs.registry import Registry

if TYPE_CHECKING:
    from studio.engine.config import TrainConfig

# A watched file must be unchanged this long before it is read, so a file being copied is not trained on.
SETTLE_S = 2.0


@dataclass(frozen=True)
class Schedule:
    id: int
    name: str
    config: dict[str, Any]
    cron: str | None
    watch: bool
    when_idle: bool
    dataset_hash: str | None
    last_queued: str | None
    created_at: str

    @property
    def trigger(self) -> str:
        """The trigger in words, for lists."""
        parts = [f"on the schedule '{self.cron}'"] if self.cron else []
        if self.watch:
            parts.append(f"when {Path(self.config.get('dataset_path') or '?').name} changes")
        return " or ".join(parts) + (", once the machine is idle" if self.when_idle else "")

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "trigger": self.trigger}


def check_cron(expression: str) -> str:
    """The expression if it is a valid five-field cron schedule, else a plain-language error."""
    from croniter import croniter

    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise StudioError(
            what=f"'{expression}' is not a schedule Studio understands.",
            why="A schedule has five parts: minute, hour, day of month, month, day of week.",
            actions=[
                "Every night at 3:00: '0 3 * * *'.",
                "Every Monday at 9:00: '0 9 * * 1'.",
                "Every 6 hours: '0 */6 * * *'.",
            ],
            code="bad_schedule",
        )
    return expression


def next_due(expression: str, after: datetime) -> datetime:
    """The first time the cron expression fires after `after`, read in the machine's local time."""
    from croniter import croniter

    local = after.astimezone()
    fires: datetime = croniter(expression, local).get_next(datetime)
    return fires.astimezone(timezone.utc)


class Schedules:
    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry or Registry()

    def add(
        self, name: str, config: TrainConfig, *, cron: str | None = None, watch: bool = False, when_idle: bool = False
    ) -> Schedule:
        if cron is None and not watch:
            raise StudioError(
                what="A schedule needs something that starts it.",
                why="Neither a time pattern nor a watched dataset was given.",
                actions=[
                    "Add --cron '0 3 * * *' to retrain every night at 3.",
                    "Add --watch to retrain when the data changes.",
                ],
                code="bad_schedule",
            )
        if cron is not None:
            check_cron(cron)
        dataset_hash = None
        if watch:
            dataset_hash = _content_hash(config.dataset_path)
            if dataset_hash is None:
                raise StudioError(
                    what="Studio cannot watch that dataset.",
                    why=f"There is no readable file at {config.dataset_path}.",
                    actions=["Check the path.", "Pass the file with --dataset."],
                    code="dataset_missing",
                )
        with self.registry.connect() as db:
            cursor = db.execute(
                "INSERT INTO schedules (name, config, cron, watch, when_idle, dataset_hash, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, config.model_dump_json(), cron, int(watch), int(when_idle), dataset_hash, now_iso()),
            )
            schedule_id = cursor.lastrowid
        assert schedule_id is not None
        return self.get(schedule_id)

    def list(self) -> list[Schedule]:
        with self.registry.connect() as db:
            rows = db.execute("SELECT * FROM schedules WHERE enabled = 1 ORDER BY id").fetchall()
        return [_schedule(row) for row in rows]

    def get(self, schedule_id: int) -> Schedule:
        found = next((s for s in self.list() if s.id == schedule_id), None)
        if found is None:
            raise StudioError(
                what=f"There is no schedule {schedule_id}.",
                why="It was removed, or the number is mistyped.",
                actions=["Run `studio schedule list` to see the schedules and their numbers."],
                code="schedule_not_found",
            )
        return found

    def remove(self, schedule_id: int) -> Schedule:
        """Stop a schedule; runs it already queued stay in the queue."""
        schedule = self.get(schedule_id)
        with self.registry.connect() as db:
            db.execute("UPDATE schedules SET enabled = 0 WHERE id = ?", (schedule_id,))
        return schedule

    def tick(
        self,
        queue: RunQueue,
        now: datetime | None = None,
        validates: Callable[[Schedule], str | None] | None = None,
    ) -> builtins.list[QueueEntry]:
        """Queue a new version for every schedule that is due; returns what was queued. `validates` returns
        None for a usable dataset, else the problem in words (injected by tests; defaults to the validator)."""
        now = now or datetime.now(timezone.utc)
        check = validates or _dataset_problem
        queued: list[QueueEntry] = []
        for schedule in self.list():
            if queue.has_open_entry_for_schedule(schedule.id):
                continue  # one version at a time: a retrain already waiting will see the newest data
            reason = self._due(schedule, now, check)
            if reason is not None:
                queued.append(self._enqueue(schedule, queue, now, reason))
        return queued

    def _due(self, schedule: Schedule, now: datetime, check: Callable[[Schedule], str | None]) -> str | None:
        if schedule.cron:
            since = parse_time(schedule.last_queued or schedule.created_at)
            if next_due(schedule.cron, since) <= now:
                return f"the schedule '{schedule.cron}'"
        if not schedule.watch:
            return None
        path = Path(schedule.config.get("dataset_path") or "")
        digest = _content_hash(str(path))
        if digest is None or digest == schedule.dataset_hash:
            return None
        if now.timestamp() - path.stat().st_mtime < SETTLE_S:
            return None  # still being written; look again at the next tick
        with self.registry.connect() as db:  # this content is handled, whatever the verdict
            db.execute("UPDATE schedules SET dataset_hash = ? WHERE id = ?", (digest, schedule.id))
        problem = check(schedule)
        if problem is not None:
            add_notice(
                self.registry,
                "warning",
                f"{path.name} changed but was not used for retraining",
                f"The new version of the file has a problem: {problem} Fix the file and save it again; Studio "
                f"retrains {schedule.name} once it validates.",
            )
            return None
        return f"a change in {path.name}"

    def _enqueue(self, schedule: Schedule, queue: RunQueue, now: datetime, reason: str) -> QueueEntry:
        from studio.engine.config import TrainConfig
        from studio.engine.queue.timeline import estimate_duration
        from studio.engine.runs.active import active_run
        from studio.engine.runs.folders import final_adapter_dir

        config = TrainConfig.from_dict(schedule.config, source=f"schedule {schedule.id}")
        active = active_run(self.registry, schedule.name)
        if active is not None:  # compared with the active version on the same held-out examples
            config = config.updated(compare_adapter=str(final_adapter_dir(active.run_dir)))
        entry = queue.add(
            config, schedule.name, when_idle=schedule.when_idle, schedule_id=schedule.id,
            estimate_s=estimate_duration(config),
        )
        with self.registry.connect() as db:
            db.execute("UPDATE schedules SET last_queued = ? WHERE id = ?", (now.isoformat(), schedule.id))
        self.registry.add_note(entry.run_id, f"Queued automatically by schedule {schedule.id}: {reason}.")
        return entry


def _content_hash(path: str | None) -> str | None:
    from studio.engine.datasets.cache import content_hash

    if not path:
        return None
    try:
        return content_hash(Path(path))
    except OSError:
        return None


def _dataset_problem(schedule: Schedule) -> str | None:
    """None when the watched file still validates for its recipe, else its main problem in words."""
    from studio.engine.datasets import DatasetOptions, validate_file

    config = schedule.config
    options = DatasetOptions(mapping=config.get("column_mapping"), profile=config.get("profile"))
    report = validate_file(config["dataset_path"], options)
    if report.usable:
        return None
    main = report.errors[0] if report.errors else None
    return f"{main.message} {main.suggestion}" if main else "no usable examples were found."


def _schedule(row: Any) -> Schedule:
    return Schedule(
        id=row["id"],
        name=row["name"],
        config=json.loads(row["config"]),
        cron=row["cron"],
        watch=bool(row["watch"]),
        when_idle=bool(row["when_idle"]),
        dataset_hash=row["dataset_hash"],
        last_queued=row["last_queued"],
        created_at=row["created_at"],
    )
