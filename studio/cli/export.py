"""`studio export RUN`, `studio merge RUN RUN ...`, `studio hub-login`: take a trained run out of Studio.

Progress goes to stderr so `--json` output on stdout stays clean; a failed GGUF verification exits 1.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from studio.cli.output import console, err_console, friendly_errors, print_json
from studio.engine.errors import ExitCode, StudioError
from studio.engine.progress import QUIET, Callbacks, TaskContext

FORMAT_HELP = ("hf (merged model), adapter, gguf, ollama or lmstudio; gguf-adapter or ollama-adapter for the "
               "adapter as a small GGUF applied on top of the base model's GGUF.")
QUANT_HELP = "GGUF type: f16, q8_0, Q4_K_M, Q5_K_M ... Default: f16 below 1B parameters, else Q4_K_M."


@contextmanager
def progress_bar(enabled: bool) -> Iterator[TaskContext]:
    """A task context whose reports drive a bar on stderr, or go nowhere."""
    if not enabled:
        yield QUIET
        return
    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task("Starting", total=1.0)
        yield Callbacks(lambda message, fraction: bar.update(task, description=escape(message), completed=fraction))


@friendly_errors
def export_command(
    run: str = typer.Argument(..., help="Run id, name, or run folder."),
    fmt: str = typer.Option("gguf", "--format", "-f", help=FORMAT_HELP),
    quant: str | None = typer.Option(None, "--quant", "-q", help=QUANT_HELP),
    out: Path | None = typer.Option(None, "--out", "-o", help="Folder to write (default: RUN/exports/FORMAT)."),
    hub: str | None = typer.Option(None, "--hub", help="Also upload the export to this Hub repo (owner/name)."),
    json_output: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Export a run as a merged model, adapter or verified GGUF, for Ollama or LM Studio."""
    from studio.engine.export.pipeline import export_run
    from studio.engine.export.run_info import find_run

    run_dir = find_run(run)
    with progress_bar(not json_output) as progress:
        result = export_run(run_dir, fmt, quant=quant, out_dir=out, task=progress)  # type: ignore[arg-type]
    url = None
    if hub:
        from studio.engine.export.hub_upload import upload_folder

        url = upload_folder(result.out_dir, hub)
    if json_output:
        print_json({**result.to_dict(), "hub_url": url})
    else:
        console.print(f"Exported to [bold]{escape(str(result.out_dir))}[/]", highlight=False)
        if result.verification:
            colour = "green" if result.verification.passed else "red"
            console.print(f"[{colour}]{escape(result.verification.summary())}[/]", highlight=False)
        if result.ollama and result.ollama.created:
            name = result.ollama.model_name
            console.print(f"Added to Ollama as {escape(name)}. Try: {escape(result.ollama.run_command)}",
                          highlight=False)
        for note in result.notes:
            console.print(escape(note), highlight=False)
        if url:
            console.print(f"Uploaded to {url}")
    if not result.ok:
        raise typer.Exit(int(ExitCode.ERROR))


@friendly_errors
def merge_command(
    runs: list[str] = typer.Argument(..., help="Two or more runs trained on the same base model."),
    method: str = typer.Option("ties", "--method", "-m", help="ties, dare, dare_linear or linear."),
    weights: str | None = typer.Option(None, "--weights", help="Comma-separated weights, one per run."),
    density: float = typer.Option(0.5, "--density", help="Share of each adapter's weights kept (ties, dare)."),
    name: str | None = typer.Option(None, "--name", help="Name of the new run (default: merge-METHOD)."),
    json_output: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """Merge several runs' adapters into a new run you can export like any other."""
    from studio.engine.export.merge_runs import merge_runs
    from studio.engine.export.run_info import find_run

    try:
        parsed = [float(w) for w in weights.split(",")] if weights else None
    except ValueError:
        raise StudioError(what=f"'{weights}' is not a list of weights.", why="Weights are numbers: 0.7,0.3",
                          actions=["Pass one number per run, separated by commas."],
                          code="merge_invalid") from None
    with progress_bar(not json_output) as progress:
        record = merge_runs([find_run(r) for r in runs], method, parsed, density, name,  # type: ignore[arg-type]
                            task=progress)
    if json_output:
        print_json(record.to_dict())
    else:
        console.print(f"Merged into run [bold]{record.id}[/] (version {record.version}).", highlight=False)
        console.print(f"Export it with: studio export {record.id} --format gguf")


@friendly_errors
def hub_login_command() -> None:
    """Save a Hugging Face token (from HF_TOKEN, or typed at a hidden prompt) in the system keyring for
    `studio export --hub`. There is no --token option: a token on the command line ends up in shell history
    and in every process listing."""
    from studio.engine.export.hub_upload import save_token

    token = os.environ.get("HF_TOKEN") or typer.prompt(
        "Hugging Face token (write access, from https://huggingface.co/settings/tokens)", hide_input=True
    )
    save_token(token)
    console.print("Token saved in the system keyring.")


def register(app: typer.Typer) -> None:
    app.command("export")(export_command)
    app.command("merge")(merge_command)
    app.command("hub-login")(hub_login_command)
