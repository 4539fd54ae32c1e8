"""`studio cloud offers`, `login`, `train`, `status` and `stop`: the GPUs a provider (RunPod or Lambda) rents
out that fit a run, with their time and cost, the provider's API key kept in the system keyring, and a run
trained on a rented machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from studio.cli.output import console, friendly_errors, print_json
from studio.engine.errors import StudioError

cloud_app = typer.Typer(help="Train on a rented GPU: see the offers that fit a run and what they cost, rent one "
                        "and train on it.", no_args_is_help=True)


@friendly_errors
def offers_command(
    model: str = typer.Option(..., "--model", "-m", help="'builtin', a model folder or a Hugging Face id."),
    dataset: Path | None = typer.Option(None, "--dataset", "-d", help="Training data, to fit time and cost to it."),
    profile: str | None = typer.Option(None, "--profile", "-p", help="Use case: chatbot, code, summarization, "
                                       "qa, creative or domain."),
    provider: str = typer.Option("runpod", "--provider", help="Where to rent: runpod or lambda."),
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
    from studio.engine.cloud.providers import provider_name

    table = Table(title=f"Offers for {model_name} on {provider_name(provider)}, cheapest first")
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
def login_command(provider: str = typer.Argument(..., help="runpod or lambda")) -> None:
    """Save a provider's API key in the system keyring, typed at a hidden prompt."""
    # No --key option: a key on the command line ends up in shell history and in every process listing.
    from studio.engine.cloud import save_api_key
    from studio.engine.cloud.providers import provider_name

    name = provider_name(provider)
    key = typer.prompt(f"{name} API key", hide_input=True)
    save_api_key(provider, key)
    console.print(f"{name} API key saved in the system keyring.", highlight=False)


@friendly_errors
def train_command(
    run: str | None = typer.Argument(None, help="An existing run to train (id or name); without it, a new run "
                                     "is made from the options below, as `studio train` makes one."),
    gpu: str = typer.Option("", "--gpu", help="The GPU to rent, as `studio cloud offers` names it (default: "
                            "the cheapest that fits)."),
    budget: float | None = typer.Option(None, "--budget", min=0.0, help="Most to spend, in US dollars: the run "
                                        "stops with a checkpoint there (default: 1.5x the estimate)."),
    spot: bool = typer.Option(False, "--spot", help="Rent a spot machine: cheaper, but it can be taken back "
                              "(Studio then resumes on a new one from the last checkpoint). RunPod only."),
    cloud: str | None = typer.Option(None, "--cloud", help="secure or community (default: the cheaper; Lambda "
                                     "has secure only)."),
    provider: str = typer.Option("runpod", "--provider", help="Where to train: runpod or lambda (a rented "
                                 "machine), or together (a Together AI fine-tuning job, no machine)."),
    keep_running: bool = typer.Option(False, "--keep-running", help="Leave the machine running when the run "
                                      "ends (it bills until you terminate it)."),
    dataset: Path | None = typer.Option(None, "--dataset", "-d", help="The training data file."),
    model: str | None = typer.Option(None, "--model", "-m", help="'builtin', a model folder or a Hugging Face id."),
    profile: str | None = typer.Option(None, "--profile", "-p", help="Use case: chatbot, code, summarization, "
                                       "qa, creative or domain."),
    config_file: Path | None = typer.Option(None, "--config", "-c", help="Settings file (JSON/YAML); flags "
                                            "override it. Without one, Studio plans the run for the rented GPU."),
    max_steps: int | None = typer.Option(None, "--max-steps", min=1, help="Stop after this many steps."),
    name: str | None = typer.Option(None, "--name", help="A name for the run (versions are counted per name)."),
) -> None:
    """Train a run on a rented GPU, watched here as a local run is; the machine is terminated at the end."""
    import tempfile

    from studio.cli.train import build_config
    from studio.engine.cloud import budget_cap, check_budget, offers
    from studio.engine.cloud.cloud_state import cloud_file, load_launch, write_launch
    from studio.engine.cloud.connect import get_provider
    from studio.engine.cloud.keys import load_api_key
    from studio.engine.cloud.offers import check_upload, gpu_hardware
    from studio.engine.models.facts import read_model_facts
    from studio.engine.planner import measure_dataset, plan_for
    from studio.engine.profiles import get_profile
    from studio.engine.runs.creation import new_run
    from studio.engine.runs.folders import load_run_config
    from studio.engine.runs.registry import Registry

    registry = Registry()
    record = registry.find(run) if run else None
    if provider == "together":  # a fine-tuning job, no machine: no offers, no GPU to pick
        from studio.cli.together import train_on_together

        if record is None:
            record = new_run(registry, build_config(dataset, model, profile, config_file, max_steps), name)
        raise typer.Exit(train_on_together(record.run_dir, budget))
    cloud_provider = get_provider(provider)
    if record is not None and cloud_file(record.run_dir).is_file():
        earlier = load_launch(record.run_dir)
        if earlier.pod_id or earlier.state == "renting":  # renting: the runner finds the machine by its name
            console.print(f"Run [bold]{record.id}[/] still has its rented machine: reattaching to it.",
                          highlight=False)
            raise typer.Exit(supervise_cloud(record.run_dir))
    fixed = load_run_config(record.run_dir) if record else (
        build_config(dataset, model, profile, config_file, max_steps) if config_file else None)
    data = Path(fixed.dataset_path) if fixed and fixed.dataset_path else dataset
    if data is None:
        raise StudioError(what="Studio needs training data.", why="No dataset was given.",
                          actions=["Pass a file: `studio cloud train --gpu GPU --dataset my_data.jsonl`."],
                          code="dataset_missing")
    check_upload(cloud_provider, data)  # before reading a file too large to send at all
    use_case = get_profile(fixed.profile if fixed else profile)
    facts = read_model_facts(fixed.base_model if fixed else (model or "builtin"))
    stats = measure_dataset(data, facts, use_case)[0]
    overrides = {"quantization": fixed.quantization} if fixed else None
    key = load_api_key(provider)
    report = offers(provider, facts, use_case, stats, dataset=data, overrides=overrides, api_key=key)
    chosen = _pick_offer(report.estimates, gpu, spot, cloud)
    if budget is not None:
        check_budget(report, budget)  # below even the cheapest offer: refused with that figure
    cap = budget_cap(chosen, budget)
    if record is None:
        if fixed is None:  # planned for the rented GPU, not for this machine
            planned = plan_for(model, profile, data, hardware=gpu_hardware(chosen.offer.gpu), facts=facts)
            with tempfile.TemporaryDirectory() as tmp:
                planned_file = Path(tmp) / "planned.json"
                planned.plan.config.save(planned_file)
                fixed = build_config(data, model, profile, planned_file, max_steps)
        record = new_run(registry, fixed, name)
    offer = chosen.offer
    write_launch(record.run_dir, provider, offer.gpu.id, spot=offer.price.spot, cloud=offer.price.cloud,
                 budget_usd=cap, price_per_hour=offer.price.per_hour, keep_running=keep_running)
    console.print(f"Run [bold]{record.id}[/] ({escape(record.name)} v{record.version}) on a rented "
                  f"{escape(offer.gpu.name)} ({'spot' if offer.price.spot else 'on-demand'}, {offer.price.cloud}, "
                  f"${offer.price.per_hour:.2f}/h), budget ${cap:.2f}; estimated ${chosen.cost.expected:.2f} "
                  f"(${chosen.cost.low:.2f} to ${chosen.cost.high:.2f}).", highlight=False)
    raise typer.Exit(supervise_cloud(record.run_dir))


def _pick_offer(estimates: list[Any], gpu: str, spot: bool, cloud: str | None) -> Any:
    wanted = gpu.lower()
    matching = [item for item in estimates
                if (not wanted or wanted in {item.offer.gpu.id.lower(), item.offer.gpu.name.lower()})
                and item.offer.price.spot == spot and (cloud is None or item.offer.price.cloud == cloud)]
    if not matching:
        kind = "spot" if spot else "on-demand"
        listed = sorted({f"{item.offer.gpu.id} ({'spot' if item.offer.price.spot else 'on-demand'}, "
                         f"{item.offer.price.cloud})" for item in estimates})
        raise StudioError(
            what=f"No {kind} {gpu or 'GPU'}{f' in {cloud} cloud' if cloud else ''} that fits this run can be rented "
                 "now.",
            why="The offers that fit are: " + "; ".join(listed) + ".",
            actions=["Pick one of them with --gpu (and --spot for a spot one).",
                     "See them with their time and cost: `studio cloud offers --model M --dataset D`."],
            code="cloud_gpu_not_offered",
        )
    return min(matching, key=lambda item: item.cost.expected)


def supervise_cloud(run_dir: Path) -> int:
    """The cloud runner under a Supervisor, shown as `studio train` shows a local worker; Ctrl-C stops the
    run with a checkpoint and terminates the machine."""
    import signal
    import sys

    from studio.cli.train import report_error_event
    from studio.engine.events import Event
    from studio.engine.training.supervisor import Supervisor

    def on_event(event: Event) -> None:
        message = str(getattr(event, "message", "") or "")
        if event.kind == "heartbeat" and getattr(event, "phase", "") == "cloud_cost":
            return
        if event.kind == "heartbeat" and getattr(event, "phase", "") == "cloud" and message:
            console.print(f"[dim]{escape(message)}[/]", highlight=False)
        elif event.kind == "started":
            resumed = getattr(event, "resumed_from_step", None)
            console.print(f"Training on the rented machine ({getattr(event, 'total_steps', 0)} steps"
                          + (f", resuming at step {resumed}" if resumed else "") + ")", highlight=False)
        elif event.kind == "checkpoint":
            console.print(f"[dim]Checkpoint at step {getattr(event, 'step', 0)} copied back[/]", highlight=False)
        elif event.kind in {"anomaly", "recovery"}:
            console.print(f"[yellow]{escape(message)}[/]", highlight=False)
        elif event.kind == "error":
            report_error_event(event)

    command = [sys.executable, "-m", "studio.engine.cloud.runner", str(run_dir)]
    supervisor = Supervisor(run_dir, on_event=on_event, command=command, silence_limit_s=120.0)

    def on_interrupt(_signum: int, _frame: Any) -> None:
        console.print("Stopping: a checkpoint is saved and copied back, then the machine is terminated…")
        supervisor.stop()

    previous = {sig: signal.signal(sig, on_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        supervisor.start()
        outcome = supervisor.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _closing(run_dir, outcome)
    return outcome.exit_code if outcome.exit_code >= 0 else 1


def _closing(run_dir: Path, outcome: Any) -> None:
    from studio.engine.cloud.cloud_state import load_launch

    launch = load_launch(run_dir)
    spent = f"${launch.spent_usd:.2f} of ${launch.budget_usd:.2f}"
    again = f"studio cloud train{'' if launch.provider == 'runpod' else f' --provider {launch.provider}'} " \
            f"--gpu {launch.gpu_id}"
    if outcome.status == "completed" and launch.imported_run_id:
        console.print(f"[bold green]Done.[/] {escape(getattr(outcome.last_event, 'summary', ''))}\n"
                      f"Spent {spent}; the machine is terminated.", highlight=False)
    elif launch.outcome == "budget":
        console.print(f"Stopped at the budget ({spent}) with a checkpoint; the machine is terminated. Continue "
                      f"with a higher budget: {again} --budget USD {run_dir.name}", highlight=False)
    elif outcome.status in {"stopped", "paused"}:
        console.print(f"Stopped with a checkpoint after {spent}; the machine is terminated. Continue with: "
                      f"{again} {run_dir.name}", highlight=False)


@friendly_errors
def status_command(
    json_output: bool = typer.Option(False, "--json", help="Print machine-readable JSON."),
) -> None:
    """The runs trained on rented GPUs: their machine, state and cost so far."""
    import time

    from studio.engine.cloud.cloud_state import cloud_file, load_launch
    from studio.engine.runs.registry import Registry

    registry = Registry()
    registry.reconcile()
    rows = []
    now = time.time()
    for record in registry.list_runs():
        if not cloud_file(record.run_dir).is_file():
            continue
        launch = load_launch(record.run_dir)
        unsaved = not launch.pod_id and launch.state == "renting"  # found by its name when Studio starts again
        rows.append({"run_id": record.id, "name": record.name, "version": record.version, "status": record.status,
                     "provider": launch.provider, "gpu_id": launch.gpu_id, "spot": launch.spot, "pod_id": launch.pod_id,
                     "machine": "rented" if launch.pod_id else "renting" if unsaved else "none",
                     "outcome": launch.outcome,
                     "cost_usd": round(launch.cost_so_far(now), 4), "budget_usd": launch.budget_usd,
                     "pods": list(launch.pods)})
    if json_output:
        print_json({"runs": rows})
        return
    if not rows:
        console.print("No runs have trained on a rented GPU yet. Start one with `studio cloud train`.")
        return
    from rich.table import Table

    table = Table(title="Runs on rented GPUs")
    for column in ("Run", "Status", "GPU", "Machine", "Cost so far", "Budget"):
        table.add_column(column)
    for row in rows:
        machine = f"{row['pod_id']} (billing)" if row["pod_id"] else (
            "being rented (`studio cloud stop` finds it)" if row["machine"] == "renting" else "terminated")
        table.add_row(escape(f"{row['run_id']} ({row['name']} v{row['version']})"), str(row["status"]),
                      escape(f"{row['gpu_id']}{', spot' if row['spot'] else ''}"), escape(machine),
                      f"${row['cost_usd']:.2f}", f"${row['budget_usd']:.2f}")
    console.print(table)


@friendly_errors
def stop_command(
    run: str = typer.Argument(..., help="The run (id or name)."),
    wait_s: float = typer.Option(240.0, "--wait", min=0.0, help="Seconds to wait for the checkpoint."),
) -> None:
    """Stop a rented run (its checkpoint is copied back) and terminate its machine."""
    import time

    from studio.engine.cloud.cloud_state import load_launch
    from studio.engine.cloud.release import release_machine
    from studio.engine.control import ControlCommand
    from studio.engine.runs.registry import Registry
    from studio.engine.training.control_channel import send_to_run_dir

    registry = Registry()
    registry.reconcile()
    record = registry.find(run)
    launch = load_launch(record.run_dir)
    if record.status == "running" and record.pid:  # its runner is alive: it stops, syncs and terminates
        send_to_run_dir(record.run_dir, ControlCommand("stop"))
        console.print("Stopping: a checkpoint is saved and copied back, then the machine is terminated…")
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            time.sleep(1.0)
            launch = load_launch(record.run_dir)
            if launch.state == "ended" and launch.outcome:
                console.print(f"Stopped; the machine is terminated (${launch.spent_usd:.2f} spent).", highlight=False)
                return
        raise StudioError(what="The rented run has not stopped yet.",
                          why=f"Its runner did not end within {wait_s:.0f} s.",
                          actions=[f"Wait and run `studio cloud status`, or `studio cloud stop {record.id}` again.",
                                   "Check the provider's console that the machine is terminated."],
                          code="cloud_stop_slow")
    spent = release_machine(record.run_dir)  # no runner: terminate it from here
    if spent is None:
        console.print("This run has no rented machine left: nothing bills.")
        return
    if record.status in {"running", "paused", "queued", "interrupted"}:
        registry.set_status(record.id, "stopped")
    console.print(f"The machine is terminated (${spent:.2f} spent). The checkpoints copied back are "
                  "in the run's folder.", highlight=False)


def register(app: typer.Typer) -> None:
    cloud_app.command("offers")(offers_command)
    cloud_app.command("login")(login_command)
    cloud_app.command("train")(train_command)
    cloud_app.command("status")(status_command)
    cloud_app.command("stop")(stop_command)
    app.add_typer(cloud_app, name="cloud")
