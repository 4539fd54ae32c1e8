"""`studio cloud offers` and `studio cloud login`: the GPUs a provider rents out that fit a run, with their
time and cost, and the provider's API key kept in the system keyring."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from studio.cli.output import console, friendly_errors, print_json

cloud_app = typer.Typer(help="Train on a rented GPU: see the offers that fit a run and what they cost.",
                        no_args_is_help=True)


@friendly_errors
def offers_command(
    model: str = typer.Option(..., "--model", "-m", help="'builtin', a model folder or a Hugging Face id."),
    dataset: Path | None = typer.Option(None, "--dataset", "-d", help="Training data, to fit time and cost to it."),
    profile: str | None = typer.Option(None, "--profile", "-p", help="Use case: chatbot, code, summarization, "
                                       "qa, creative or domain."),
    provider: str = typer.Option("runpod", "--provider", help="Where to rent: runpod."),
    budget: float | None = typer.Option(None, "--budget", min=0.0,
                                        help="Most you want to spend, in US dollars: only offers within it."),
    json_output: bool = typer.Option(False, "--json", help="Print machine-readable JSON (docs/cloud.md)."),
) -> None:
    """List the rented GPUs the run fits on, cheapest first, each with its time and cost estimate."""
    from studio.engine.cloud import check_budget, offers
    from studio.engine.models.facts import read_model_facts
    from studio.engine.planner import measure_dataset
    from studio.engine.profiles import get_profile

    use_case = get_profile(profile)
    facts = read_model_facts(model)
    stats = measure_dataset(dataset, facts, use_case)[0] if dataset is not None else None
    report = offers(provider, facts, use_case, stats, dataset=dataset)
    shown = report.estimates if budget is None else check_budget(report, budget)
    if json_output:
        print_json({**report.to_dict(), "offers": [item.to_dict() for item in shown], "budget": budget})
        return
    _render(shown, facts.name, report.provider)


def _render(shown: list[Any], model_name: str, provider: str) -> None:
    from rich.table import Table

    from studio.cli.plan import _duration

    table = Table(title=f"Offers for {model_name} on {provider}, cheapest first")
    for column in ("GPU", "VRAM", "Price/h", "Kind", "Time", "Cost", "Default budget"):
        table.add_column(column)
    for item in shown:
        offer, time, cost = item.offer, item.total_time_s, item.cost
        kind = f"{'spot' if offer.price.spot else 'on-demand'}, {offer.price.cloud}"
        if item.config.quantization == "4bit":
            kind += ", QLoRA"
        table.add_row(escape(offer.gpu.name), f"{offer.gpu.vram_gb:.0f} GB", f"${offer.price.per_hour:.2f}", kind,
                      f"{_duration(time.expected)} ({_duration(time.low)} to {_duration(time.high)})",
                      f"${cost.expected:.2f} (${cost.low:.2f} to ${cost.high:.2f})", f"${item.default_budget:.2f}")
    console.print(table)
    console.print("Spot machines are cheaper but can be taken away; the time includes about 5 minutes of setup.",
                  highlight=False)


@friendly_errors
def login_command(provider: str = typer.Argument(..., help="runpod")) -> None:
    """Save a provider's API key in the system keyring, typed at a hidden prompt."""
    # No --key option: a key on the command line ends up in shell history and in every process listing.
    from studio.engine.cloud import save_api_key
    from studio.engine.cloud.providers import provider_name

    name = provider_name(provider)
    key = typer.prompt(f"{name} API key", hide_input=True)
    save_api_key(provider, key)
    console.print(f"{name} API key saved in the system keyring.", highlight=False)


def register(app: typer.Typer) -> None:
    cloud_app.command("offers")(offers_command)
    cloud_app.command("login")(login_command)
    app.add_typer(cloud_app, name="cloud")
