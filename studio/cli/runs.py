"""`studio runs`, `studio stop RUN`, `studio pause RUN`: see and steer runs, also ones started elsewhere.

Commands reach a running worker through its run folder (RUN_DIR/control/), so they work from any terminal.
"""

from __future__ import annotations

import typer
from rich.markup import escape

from studio.cli.output import console, friendly_errors, print_json
from studio.engine.errors import StudioError


@friendly_errors
def runs_command(
    json_output: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """List training runs, newest first."""
    from studio.engine.runs.active import active_ids
    from studio.engine.runs.registry import Registry

    registry = Registry()
    records = registry.list_runs()
    active = active_ids(registry)
    if json_output:
        print_json([{**record.to_dict(), "active": record.id in active} for record in records])
        return
    if not records:
        console.print("No runs yet. Start one with `studio train --dataset FILE`.")
        return
    from rich.table import Table

    table = Table(title="Runs")
    for column in ("Run", "Name", "Version", "Status", "Steps", "Final loss", "Created"):
        table.add_column(column, overflow="fold")
    for record in records:
        loss = record.metrics.get("final_loss")
        table.add_row(
            record.id,
            escape(record.name),
            record.version + (" (active)" if record.id in active else ""),
            record.status,
            str(record.metrics.get("steps", "")),
            f"{loss:.4f}" if isinstance(loss, float) else "",
            record.created_at[:19].replace("T", " "),
        )
    console.print(table)


def _send(run: str, command: str, verb: str) -> None:
    from studio.engine.control import ControlCommand
    from studio.engine.runs.registry import Registry
    from studio.engine.training.control_channel import send_to_run_dir

    registry = Registry()
    registry.reconcile()
    record = registry.find(run)
    if record.pid is None:  # no live worker (reconciled above): finished, stopped, or released
        raise StudioError(
            what=f"The run {record.id} is not running (it is {record.status}, with no training process).",
            why=f"Only a running run can be asked to {verb}.",
            actions=[
                "See the runs and their state with `studio runs`.",
                f"Continue it with `studio resume {record.id}`.",
            ],
            code="run_not_active",
        )
    send_to_run_dir(record.run_dir, ControlCommand(command, {"reason": "user"}))  # type: ignore[arg-type]
    console.print(f"Asked run {record.id} to {verb}; it does so after the current step.")


@friendly_errors
def stop_command(
    run: str = typer.Argument(..., help="Run id (or a unique start of it) or run name."),
) -> None:
    """Stop a run: it saves a checkpoint and exits; `studio resume RUN` continues it later."""
    _send(run, "stop", "stop")


@friendly_errors
def pause_command(
    run: str = typer.Argument(..., help="Run id (or a unique start of it) or run name."),
    release: bool = typer.Option(False, "--release", help="Save a checkpoint and free all memory."),
) -> None:
    """Pause a run (kept in memory; `studio resume RUN` continues at once), or release its memory."""
    _send(run, "pause_release" if release else "pause", "pause and free its memory" if release else "pause")


def register(app: typer.Typer) -> None:
    app.command("runs")(runs_command)
    app.command("stop")(stop_command)
    app.command("pause")(pause_command)
