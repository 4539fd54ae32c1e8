"""`studio queue …`, `studio schedule …` and `studio activate RUN`: line runs up, retrain on a schedule or
when the data changes, and choose which version of a model is the one in use.
"""

from __future__ import annotations

import signal
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from studio.cli.output import console, err_console, friendly_errors, print_json
from studio.engine.errors import StudioError

queue_app = typer.Typer(help="Line up several runs; they train one after another.", no_args_is_help=True)
schedule_app = typer.Typer(help="Retrain automatically on a schedule or when a dataset changes.",
                           no_args_is_help=True)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print stable JSON instead of text.")]
DatasetOpt = Annotated[Path | None, typer.Option("--dataset", "-d", help="The training data file.")]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="'builtin', a model folder or a Hugging Face id.")]
ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="Settings file (JSON/YAML); flags override it.")]
StepsOpt = Annotated[int | None, typer.Option("--max-steps", min=1, help="Stop each run after this many steps.")]
NameOpt = Annotated[str | None, typer.Option("--name", help="The model line's name (versions are counted per name).")]
ProfileOpt = Annotated[str | None, typer.Option("--profile", "-p", help="Use case: chatbot, code, qa, …")]
IdleOpt = Annotated[bool, typer.Option("--when-idle", help="Start only when no other training runs and the "
                                       "GPU (or, without one, the processor) is mostly free.")]


def _checked_config(
    dataset: Path | None, model: str | None, profile: str | None, config_file: Path | None, max_steps: int | None
) -> tuple[Any, str]:
    """The run's settings, checked now (a missing model or dataset is reported before anything is queued)."""
    from studio.cli.train import build_config, check_device
    from studio.engine.models.resolve import resolve_model
    from studio.engine.runs.creation import default_run_name

    config = build_config(dataset, model, profile, config_file, max_steps)
    resolve_model(config.base_model)
    check_device(config)
    return config, default_run_name(config)


def parse_start(text: str, now: datetime | None = None) -> datetime:
    """'03:00' (the next time the clock shows it) or a date and time ('2026-11-24 03:00'), local time."""
    now = now or datetime.now()
    try:
        clock = datetime.strptime(text.strip(), "%H:%M")
    except ValueError:
        pass
    else:
        moment = now.replace(hour=clock.hour, minute=clock.minute, second=0, microsecond=0)
        return moment if moment > now else moment + timedelta(days=1)
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise StudioError(
            what=f"'{text}' is not a time Studio understands.",
            why="A start time is a clock time or a date and time.",
            actions=["Tonight at three: --at 03:00.", "A given day: --at '2026-11-24 03:00'."],
            code="bad_time",
        ) from None


# ---- queue ---------------------------------------------------------------------------------------------------


@queue_app.command("add")
@friendly_errors
def queue_add(
    dataset: DatasetOpt = None,
    model: ModelOpt = None,
    config_file: ConfigOpt = None,
    max_steps: StepsOpt = None,
    name: NameOpt = None,
    profile: ProfileOpt = None,
    at: Annotated[str | None, typer.Option("--at", help="Start no earlier than this time ('03:00').")] = None,
    when_idle: IdleOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Add a run to the end of the queue (`studio queue run`, or the app, works through it)."""
    from studio.engine.queue import RunQueue, estimate_duration

    config, default_name = _checked_config(dataset, model, profile, config_file, max_steps)
    start = parse_start(at) if at else None
    entry = RunQueue().add(
        config, name or default_name, not_before=start, when_idle=when_idle, estimate_s=estimate_duration(config)
    )
    if as_json:
        print_json(entry.to_dict())
        return
    console.print(f"Queued [bold]{escape(entry.name)} {entry.version}[/] as number {entry.id}.", highlight=False)
    console.print("Start the queue with `studio queue run`, or open Studio and press Start queue in Runs.")


@queue_app.command("list")
@friendly_errors
def queue_list(
    show_all: Annotated[bool, typer.Option("--all", help="Also list finished entries.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """The queue in order, with estimated start and finish times."""
    from studio.engine.queue import RunQueue, runner_busy, timeline
    from studio.engine.runs.notices import unseen_notices

    queue = RunQueue()
    queue.registry.reconcile()
    entries = queue.entries(include_finished=show_all)
    slots = {slot.entry.id: slot for slot in timeline(entries)}
    notices = unseen_notices(queue.registry, mark_seen=not as_json)
    if as_json:
        print_json({
            "paused": queue.is_paused(),
            "runner_busy": runner_busy(),
            "entries": [
                {**e.to_dict(),
                 "estimated_start": slots[e.id].start.isoformat() if e.id in slots else None,
                 "estimated_finish": slots[e.id].finish.isoformat() if e.id in slots else None}
                for e in entries
            ],
            "notices": [n.__dict__ for n in notices],
        })
        return
    for notice in notices:
        style = {"error": "red", "warning": "yellow"}.get(notice.level, "green")
        console.print(f"[{style}]{escape(notice.title)}[/]: {escape(notice.message)}", highlight=False)
    if not entries:
        console.print("The queue is empty. Add a run with `studio queue add --dataset FILE`.")
        return
    table = Table(title="Queue" + (" (paused)" if queue.is_paused() else ""))
    for column in ("#", "Run", "State", "Starts", "Finishes", "Condition"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        slot = slots.get(entry.id)
        condition = ", ".join(filter(None, [
            f"not before {entry.not_before.astimezone():%d %b %H:%M}" if entry.not_before else "",
            "when idle" if entry.when_idle else "",
            "automatic retrain" if entry.automatic else "",
        ]))
        table.add_row(
            str(entry.id),
            f"{escape(entry.name)} {entry.version}",
            entry.state + (f": {escape(entry.outcome)}" if entry.outcome and entry.state != "running" else ""),
            _clock(slot.start) if slot else "",
            _clock(slot.finish) + ("" if not slot or slot.estimated else " (guess)") if slot else "",
            condition,
        )
    console.print(table)
    if runner_busy():
        console.print("[dim]The queue is being worked through now.[/]")


def _clock(moment: datetime) -> str:
    local = moment.astimezone()
    return f"{local:%H:%M}" if local.date() == datetime.now().date() else f"{local:%d %b %H:%M}"


@queue_app.command("run")
@friendly_errors
def queue_run(
    watch: Annotated[bool, typer.Option("--watch", help="Keep going after the queue is empty, for schedules "
                                        "and watched datasets (Ctrl-C ends it).")] = False,
) -> None:
    """Train the queued runs one after another until the queue is empty. Ctrl-C stops the current run with a
    checkpoint; it resumes first the next time the queue runs."""
    from studio.engine.events import Error, Eval, Event, Started
    from studio.engine.queue import QueueEntry, QueueRunner

    def on_event(entry: QueueEntry, event: Event) -> None:
        label = f"  {escape(entry.name)} {entry.version}"
        if isinstance(event, Started):
            console.print(f"{label}: training {event.total_steps} steps on {event.device}", highlight=False)
        elif isinstance(event, Eval):
            console.print(f"{label}: step {event.step}, held-out loss {event.eval_loss:.4f}", highlight=False)
        elif isinstance(event, Error):
            err_console.print(f"{label}: [red]{escape(event.message)}[/]", highlight=False)

    runner = QueueRunner(on_event=on_event, say=lambda text: console.print(escape(text), highlight=False))
    previous = signal.getsignal(signal.SIGINT)

    def on_interrupt(_signum: int, _frame: FrameType | None) -> None:
        console.print("Stopping the queue after the current step (with a checkpoint)…")
        runner.stop_requested.set()

    signal.signal(signal.SIGINT, on_interrupt)
    signal.signal(signal.SIGTERM, on_interrupt)
    try:
        results = runner.run(keep_watching=watch)
    finally:
        signal.signal(signal.SIGINT, previous)
    failed = [r for r in results if r.state == "failed"]
    done = sum(1 for r in results if r.state == "done")
    console.print(f"Queue finished: {done} done, {len(failed)} failed.")
    raise typer.Exit(1 if failed else 0)


@queue_app.command("stop")
@friendly_errors
def queue_stop() -> None:
    """Stop the runner working through the queue (the app's, or a `studio queue run` elsewhere): the current
    run stops with a checkpoint and resumes first the next time the queue runs."""
    from studio.engine.queue import stop_runner

    if stop_runner():
        console.print("Asked the queue to stop; the current run saves a checkpoint first.")
    else:
        console.print("Nothing is working through the queue.")


@queue_app.command("remove")
@friendly_errors
def queue_remove(entry_id: Annotated[int, typer.Argument(help="The entry's number in `studio queue list`.")]) -> None:
    """Take a run off the queue (a running one stops with a checkpoint and can be resumed later)."""
    from studio.engine.queue import RunQueue

    console.print(escape(RunQueue().remove(entry_id)), highlight=False)


@queue_app.command("move")
@friendly_errors
def queue_move(
    entry_id: Annotated[int, typer.Argument(help="The entry's number in `studio queue list`.")],
    place: Annotated[int, typer.Argument(min=1, help="Its new place among the waiting runs: 1 is next.")],
) -> None:
    """Change the order of the waiting runs."""
    from studio.engine.queue import RunQueue

    queue = RunQueue()
    waiting = [entry.id for entry in queue.entries() if entry.state == "waiting"]
    current = waiting.index(entry_id) if entry_id in waiting else 0
    queue.move(entry_id, place - 1 - current)
    console.print("Moved. The order is now:")
    queue_list(show_all=False, as_json=False)


@queue_app.command("pause")
@friendly_errors
def queue_pause() -> None:
    """Let the current run finish but start nothing new until `studio queue resume`."""
    from studio.engine.queue import RunQueue

    RunQueue().set_paused(True)
    console.print("The queue is paused: the run in progress finishes, nothing new starts.")


@queue_app.command("resume")
@friendly_errors
def queue_resume() -> None:
    """Let the queue start runs again."""
    from studio.engine.queue import RunQueue

    RunQueue().set_paused(False)
    console.print("The queue goes on. If nothing is working through it, run `studio queue run`.")


# ---- schedules -----------------------------------------------------------------------------------------------


@schedule_app.command("add")
@friendly_errors
def schedule_add(
    dataset: DatasetOpt = None,
    model: ModelOpt = None,
    config_file: ConfigOpt = None,
    max_steps: StepsOpt = None,
    name: NameOpt = None,
    profile: ProfileOpt = None,
    cron: Annotated[str | None, typer.Option("--cron", help="When to retrain, as a cron pattern: '0 3 * * *' "
                                             "is every night at 3.")] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Retrain whenever the dataset file changes (and still "
                                        "validates).")] = False,
    when_idle: IdleOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Retrain a model line automatically. Each retrain is a new version; it becomes the active version only
    when its held-out loss is not worse than the active one's."""
    from studio.engine.queue import Schedules

    config, default_name = _checked_config(dataset, model, profile, config_file, max_steps)
    schedule = Schedules().add(name or default_name, config, cron=cron, watch=watch, when_idle=when_idle)
    if as_json:
        print_json(schedule.to_dict())
        return
    console.print(f"Schedule {schedule.id}: retrain [bold]{escape(schedule.name)}[/] {escape(schedule.trigger)}.",
                  highlight=False)
    console.print("Retrains join the queue; keep `studio queue run --watch` running, or leave Studio open.")


@schedule_app.command("list")
@friendly_errors
def schedule_list(as_json: JsonFlag = False) -> None:
    """The schedules and what starts each."""
    from studio.engine.queue import Schedules

    schedules = Schedules().list()
    if as_json:
        print_json([s.to_dict() for s in schedules])
        return
    if not schedules:
        console.print("No schedules. Add one with `studio schedule add --dataset FILE --cron '0 3 * * *'`.")
        return
    table = Table(title="Schedules")
    for column in ("#", "Model line", "Retrains", "Last queued"):
        table.add_column(column, overflow="fold")
    for s in schedules:
        table.add_row(str(s.id), escape(s.name), escape(s.trigger), (s.last_queued or "never")[:16].replace("T", " "))
    console.print(table)


@schedule_app.command("remove")
@friendly_errors
def schedule_remove(schedule_id: Annotated[int, typer.Argument(help="The number in `studio schedule list`.")]) -> None:
    """Stop a schedule (retrains it already queued stay in the queue)."""
    from studio.engine.queue import Schedules

    schedule = Schedules().remove(schedule_id)
    console.print(f"Schedule {schedule.id} for {escape(schedule.name)} removed.", highlight=False)


@schedule_app.command("check")
@friendly_errors
def schedule_check() -> None:
    """Queue the retrains that are due now (for a system scheduler calling Studio, e.g. from cron)."""
    from studio.engine.queue import RunQueue, Schedules

    queued = Schedules().tick(RunQueue())
    for entry in queued:
        console.print(f"Queued {escape(entry.name)} {entry.version}.", highlight=False)
    if not queued:
        console.print("Nothing is due.")


# ---- active version ------------------------------------------------------------------------------------------


@friendly_errors
def activate_command(
    run: Annotated[str, typer.Argument(help="Run id (or a unique start of it), or name@version.")],
) -> None:
    """Make a finished run the active version of its model line (export and the playground start from it)."""
    from studio.engine.runs.active import activate, active_run
    from studio.engine.runs.registry import Registry

    registry = Registry()
    before = active_run(registry, registry.find(run).name)
    record = activate(registry, run)
    was = f" (was {before.version})" if before and before.id != record.id else ""
    console.print(f"{escape(record.name)} {record.version} is now the active version{was}.", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(queue_app, name="queue")
    app.add_typer(schedule_app, name="schedule")
    app.command("activate")(activate_command)
