"""`studio models`: the models Studio can train here (or on the Hub, with --search), each with a fit verdict."""

from __future__ import annotations

from typing import Any

import typer

from studio.cli.output import console, friendly_errors, print_json


def _params(n: int | None) -> str:
    if not n:
        return "?"
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


@friendly_errors
def models(
    search: str | None = typer.Option(None, "--search", "-s", help="Search Hugging Face (needs the internet)."),
    limit: int = typer.Option(20, "--limit", min=1, max=100, help="Most search results to show."),
    json_output: bool = typer.Option(False, "--json", help="Print machine-readable JSON (see docs/cli-json.md)."),
) -> None:
    """List the models on this computer, or search Hugging Face, with whether each fits this machine."""
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
        console.print(f"No text-generation models match '{search}'." if search else "No models found.")
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
    console.print(table)


def register(app: typer.Typer) -> None:
    app.command("models")(models)
