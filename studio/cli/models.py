"""`studio models`: the models Studio can train here (or on the Hub, with --search), each with a fit verdict;
`studio models download REPO` fetches one from the Hub into the Hugging Face cache."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

import typer

from studio.cli import output  # output.console: rich is imported only when text is printed
from studio.cli.output import friendly_errors, print_json

if TYPE_CHECKING:
    from studio.engine.models.download import DownloadResult

# A group whose callback is the listing, so that `studio models [--search Q]` works as it always has.
models_app = typer.Typer(invoke_without_command=True, no_args_is_help=False, add_completion=False,
                         pretty_exceptions_enable=False)


def _params(n: int | None) -> str:
    if not n:
        return "?"
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


@models_app.callback()
@friendly_errors
def models(
    ctx: typer.Context,
    search: str | None = typer.Option(None, "--search", "-s", help="Search Hugging Face (needs the internet)."),
    limit: int = typer.Option(20, "--limit", min=1, max=100, help="Most search results to show."),
    json_output: bool = typer.Option(False, "--json", help="Print machine-readable JSON (see docs/cli-json.md)."),
) -> None:
    """List the models on this computer, or search Hugging Face, with whether each fits this machine.
    `studio models download REPO` downloads one."""
    if ctx.invoked_subcommand is not None:
        return
    from studio.engine.hardware import probe
    from studio.engine.models.catalog import fit_verdict, list_local_models, search_hub

    entries = search_hub(search, limit=limit) if search is not None else list_local_models()
    hardware = probe()
    rows: list[dict[str, Any]] = []
    for entry in entries:
        row = entry.to_dict()
        verdict = fit_verdict(entry.facts, hardware) if entry.facts is not None else None
        row["fit"] = verdict.to_dict() if verdict else None
        rows.append(row)
    if json_output:
        print_json({"query": search, "device": hardware.device, "models": rows})
        return
    _render(rows, search)


def _render(rows: list[dict[str, Any]], search: str | None) -> None:
    from rich.table import Table

    if not rows:
        output.console.print(f"No text-generation models match '{search}'." if search else "No models found.")
        return
    table = Table(title=f"Hugging Face: '{search}'" if search is not None else "Models on this computer")
    table.add_column("Model (use with --model)", overflow="fold")
    table.add_column("Size", justify="right")
    table.add_column("Context", justify="right")
    table.add_column("License")
    table.add_column("Downloads" if search is not None else "Source", justify="right" if search else "left")
    table.add_column("Fits here?", overflow="fold")
    styles = {"fits": "green", "fits_4bit": "yellow", "does_not_fit": "red"}
    labels = {"fits": "fits", "fits_4bit": "with 4-bit", "does_not_fit": "too large"}
    for row in rows:
        fit = row["fit"]
        verdict = f"[{styles[fit['status']]}]{labels[fit['status']]}[/]: {fit['reason']}" if fit else "unknown size"
        fourth = f"{row['downloads']:,}" if search is not None and row["downloads"] is not None else row["source"]
        table.add_row(row["ref"], _params(row["n_params"]), str(row["context_length"] or "?"),
                      row["license"] or "?", fourth, verdict)
    output.console.print(table)


@models_app.command("download")
@friendly_errors
def download(
    repo: str = typer.Argument(..., help="The Hugging Face model id, for example Qwen/Qwen2.5-0.5B-Instruct."),
    revision: str | None = typer.Option(None, "--revision", help="Branch, tag or commit (default: main)."),
    allow_remote_code: bool = typer.Option(
        False, "--allow-remote-code", help="Also download a model that runs its own Python code (only if you trust "
                                           "its authors)."),
    json_output: bool = typer.Option(False, "--json", help="Print machine-readable JSON (see docs/cli-json.md)."),
) -> None:
    """Download a model from Hugging Face into its cache (safetensors weights, config and tokenizer only).
    Ctrl+C stops it; run the same command again to continue."""
    from studio.engine.models.download import download_model

    if allow_remote_code and not json_output:
        output.err_console.print("[yellow]Remote code is allowed:[/] this model may run its own Python code when "
                                 "loaded.")
    if json_output:
        result = download_model(repo, revision, allow_remote_code=allow_remote_code)
        print_json(result.to_dict())
        return
    result = _download_with_bar(repo, revision, allow_remote_code)
    output.console.print(f"Downloaded [bold]{result.repo_id}[/] ({_size(result.total_bytes)}) to {result.path}",
                  highlight=False, soft_wrap=True)  # a path stays copyable in one piece
    for note in result.notes:
        output.console.print(f"[yellow]Note:[/] {note}", highlight=False)
    # By its id Studio takes the main branch; another revision is used through its folder.
    model = result.repo_id if revision is None else shlex.quote(str(result.path))
    output.console.print(f"Train it with: studio train --model {model} --dataset YOUR_DATA", highlight=False,
                  soft_wrap=True)


def _download_with_bar(repo: str, revision: str | None, allow_remote_code: bool) -> DownloadResult:
    """The download with a bar on stderr: bytes, speed and time left, as the engine measures them."""
    from rich.progress import BarColumn, Progress, TextColumn

    from studio.engine.models.download import DownloadProgress, download_model

    columns = (TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[amount]}"),
               TextColumn("{task.fields[speed]}"), TextColumn("{task.fields[eta]}"))
    with Progress(*columns, console=output.err_console, transient=True) as bar:
        task = bar.add_task(f"Downloading {repo}", total=None, amount="", speed="", eta="")

        def show(state: DownloadProgress) -> None:
            bar.update(task, completed=state.done_bytes, total=state.total_bytes or None,
                       amount=f"{_size(state.done_bytes)} of {_size(state.total_bytes)}",
                       speed=f"{_size(state.bytes_per_s)}/s" if state.bytes_per_s else "",
                       eta=_time_left(state.eta_s))

        return download_model(repo, revision, allow_remote_code=allow_remote_code, progress=show)


def _time_left(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 90:
        return f"{seconds:.0f} s left"
    return f"{seconds / 60:.0f} min left" if seconds < 5400 else f"{seconds / 3600:.1f} h left"


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 1024**3:.1f} GB" if n_bytes >= 1024**3 else f"{n_bytes / 1024**2:.1f} MB"


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
