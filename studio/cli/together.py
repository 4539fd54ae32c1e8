"""Training a run as a Together AI fine-tuning job from the command line: `train_on_together` checks the model
and the price, writes together.json and supervises the Together runner as `studio train` shows a local worker
(the lead wires it to `studio cloud train --provider together`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape

from studio.cli.output import console


def train_on_together(run_dir: Path, budget_usd: float | None, *, model: str | None = None) -> int:
    """Upload the run's data, refuse a price above the budget (default 1.5x Together's estimate), then train it
    on Together AI, watched here; Ctrl-C cancels the job. A run whose job is still going is reattached to.
    `model` names Together's model when Studio cannot tell it from the run's base model. Returns the runner's
    exit code (0 completed, 130 stopped, 1 failed)."""
    from studio.engine.cloud.keys import load_api_key
    from studio.engine.cloud.together_api import PROVIDER, prepare_together
    from studio.engine.cloud.together_state import has_together, load_together

    run_dir = Path(run_dir)
    if has_together(run_dir):
        earlier = load_together(run_dir)
        if earlier.job_id and earlier.outcome in {None, "interrupted"}:
            console.print(f"Run [bold]{run_dir.name}[/] still has its Together AI job {escape(earlier.job_id)}: "
                          "reattaching to it.", highlight=False)
            return supervise_together(run_dir)
    key = load_api_key(PROVIDER)
    console.print("Checking the model and sending the data to Together AI for a price…", highlight=False)
    launch = prepare_together(run_dir, key, budget_usd, model)
    estimate = f"estimated ${launch.estimate_usd:.2f}" if launch.estimate_usd is not None else "no estimate given"
    console.print(f"Run [bold]{run_dir.name}[/] on Together AI ({escape(launch.model)}), budget "
                  f"${launch.budget_usd:.2f}; {estimate}.", highlight=False)
    return supervise_together(run_dir)


def together_command(run_dir: Path) -> list[str]:
    import sys

    return [sys.executable, "-m", "studio.engine.cloud.together_runner", str(run_dir)]


def supervise_together(run_dir: Path) -> int:
    """The Together runner under a Supervisor, shown as supervise_cloud shows the cloud runner; Ctrl-C cancels
    the job."""
    import signal

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
            total = getattr(event, "total_steps", 0)
            console.print("Training on Together AI" + (f" ({total} steps)" if total else ""), highlight=False)
        elif event.kind in {"anomaly", "recovery"}:
            console.print(f"[yellow]{escape(message)}[/]", highlight=False)
        elif event.kind == "error":
            report_error_event(event)

    supervisor = Supervisor(run_dir, on_event=on_event, command=together_command(run_dir), silence_limit_s=120.0)

    def on_interrupt(_signum: int, _frame: Any) -> None:
        console.print("Stopping: Studio cancels the Together AI job…")
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
    from studio.engine.cloud.together_state import load_together

    state = load_together(run_dir)
    spent = f"${state.cost_usd:.2f} of ${state.budget_usd:.2f}"
    if outcome.status == "completed" and state.imported_run_id:
        console.print(f"[bold green]Done.[/] {escape(getattr(outcome.last_event, 'summary', ''))}\n"
                      f"Spent {spent}.", highlight=False)
    elif state.outcome == "budget":
        console.print(f"Stopped at the budget ({spent}): the Together AI job is cancelled. Start again with a "
                      f"higher budget: --budget USD {run_dir.name}", highlight=False)
    elif state.outcome == "stopped":
        console.print(f"Stopped: the Together AI job is cancelled ({spent}).", highlight=False)
    elif state.outcome == "interrupted" and state.job_id:
        console.print(f"The Together AI job {escape(state.job_id)} goes on; start the run again to reattach.",
                      highlight=False)
