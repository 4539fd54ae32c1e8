"""`studio plan`: the settings Studio would train with on this machine, why, and what it will cost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from studio.cli.output import console, friendly_errors, print_json
from studio.engine.errors import ExitCode


@friendly_errors
def plan_command(
    model: str = typer.Option("builtin", "--model", "-m", help="'builtin', a model folder or a Hugging Face id."),
    dataset: Path | None = typer.Option(None, "--dataset", "-d", help="Training data, to fit the plan to it."),
    profile: str | None = typer.Option(None, "--profile", "-p", help="Use case: chatbot, code, summarization, "
                                       "qa, creative or domain."),
    price_per_hour: float | None = typer.Option(None, "--price-per-hour", min=0.0,
                                                help="Machine price per hour, for a cost estimate."),
    grid_intensity: float = typer.Option(400.0, "--grid-intensity", min=0.0,
                                         help="Grams of CO2 per kWh of your electricity."),
    json_output: bool = typer.Option(False, "--json", help="Print machine-readable JSON (see docs/cli-json.md)."),
) -> None:
    """Plan a training run: settings with a reason for each, and memory, time, cost and carbon estimates.

    Exits with 3 (after printing the plan) when the training would not fit in this machine's memory.
    """
    from studio.engine.planner import plan_for

    planned = plan_for(model, profile, dataset, hourly_price=price_per_hour, grid_g_per_kwh=grid_intensity)
    result, facts, hardware = planned.plan, planned.facts, planned.hardware
    if json_output:
        data = result.to_dict()
        data["warnings"] = planned.notes + data["warnings"]
        data["hardware"] = hardware.to_dict()
        data["model"] = facts.to_dict()
        data["launch_command"] = launch_preview(result.config.num_processes)
        print_json(data)
    else:
        _render(result, facts, hardware, planned.notes)
    if not result.fits:
        raise typer.Exit(int(ExitCode.OUT_OF_MEMORY))


def _render(result: Any, facts: Any, hardware: Any, notes: list[str]) -> None:
    from rich.table import Table

    config = result.config.model_dump(mode="json")
    table = Table(title=f"Plan for {facts.name} on {hardware.device.upper()}")
    table.add_column("Setting", style="bold")
    table.add_column("Value")
    table.add_column("Why", overflow="fold")
    for name, why in result.explanations.items():
        table.add_row(name, str(config.get(name)), why)
    console.print(table)
    est = result.estimates

    def span(interval: Any, fmt: Any) -> str:
        return f"{fmt(interval.expected)} ({fmt(interval.low)} to {fmt(interval.high)})"

    console.print(f"[bold]Peak memory:[/] {span(est.peak_memory_mb, _gb)} of {_gb(est.memory_budget_mb)} available")
    console.print(f"[bold]Time:[/] {span(est.total_time_s, _duration)} in {est.total_steps} steps "
                  f"(about {est.tokens_per_s:.0f} tokens/s)")
    if est.cost is not None:
        console.print(f"[bold]Cost:[/] {span(est.cost, lambda v: f'{v:.2f}')}")
    console.print(f"[bold]Carbon:[/] {span(est.carbon_g, lambda v: f'{v:.0f} g')} CO2")
    if result.config.num_processes > 1:
        console.print(f"[bold]Launch:[/] {' '.join(launch_preview(result.config.num_processes) or [])}",
                      highlight=False)
    for line in notes + list(result.warnings):
        console.print(f"[yellow]• {line}[/]", highlight=False)
    if not result.fits:
        console.print("[bold red]This training does not fit on this machine.[/] Ways out:")
        for option in result.alternatives:
            console.print(f"  • {option}", highlight=False)


def _gb(mb: float) -> str:
    return f"{mb / 1024:.1f} GB"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def register(app: typer.Typer) -> None:
    app.command("plan")(plan_command)


def launch_preview(num_processes: int) -> list[str] | None:
    """The `accelerate launch` command a multi-process run will use (RUN_DIR is filled in at launch)."""
    if num_processes <= 1:
        return None
    from studio.engine.training.distributed import launch_command

    return launch_command(Path("RUN_DIR"), num_processes)
