"""`studio handoff export RUN --out PATH` and `studio handoff import PATH`: train a run on a rented GPU
machine and bring its results back into the library."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from studio.cli.output import console, friendly_errors

handoff_app = typer.Typer(
    help="Train a run on another (GPU) machine: pack it up, then import the results.", no_args_is_help=True
)


@friendly_errors
def export_command(
    run: str = typer.Argument(..., help="Run id (or a unique start of it) or run name."),
    out: Path = typer.Option(..., "--out", "-o", help="A new folder, or a file name ending in .zip."),
) -> None:
    """Pack a run's settings, data, Studio's training code and a launch script into one folder or zip."""
    from studio.engine.handoff import export_bundle
    from studio.engine.runs.registry import Registry

    record = Registry().find(run)
    bundle = export_bundle(record.run_dir, out)
    console.print(f"Packed run [bold]{record.id}[/] into {escape(str(bundle))}", highlight=False)
    console.print("On the GPU machine, in that folder: `python -m pip install -r requirements.txt`, then "
                  "`bash launch.sh`. Then copy the folder back and run `studio handoff import FOLDER`.",
                  highlight=False)


@friendly_errors
def import_command(
    path: Path = typer.Argument(..., help="The bundle folder or zip after training, or a trained run folder."),
) -> None:
    """Bring a run trained elsewhere (its events and adapter) into the library as a new run."""
    from studio.engine.handoff import import_results
    from studio.engine.runs.registry import Registry

    result = import_results(path)
    record = Registry().find(result.run_id)
    console.print(
        f"Imported as run [bold]{record.id}[/] ({escape(record.name)} v{record.version}, {record.status}).",
        highlight=False,
    )
    for note in result.notes:
        console.print(escape(note), highlight=False)


def register(app: typer.Typer) -> None:
    handoff_app.command("export")(export_command)
    handoff_app.command("import")(import_command)
    app.add_typer(handoff_app, name="handoff")
