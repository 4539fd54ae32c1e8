"""`studio train` and `studio resume`: run training in a supervised worker with a live progress bar.

The worker's exit code becomes the command's: 0 done, 1 error, 2 dataset unusable, 3 out of memory,
4 model not found, 130 stopped (Ctrl-C checkpoints first; `studio resume RUN` continues).
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from studio.cli.output import console, friendly_errors, report_error
from studio.engine.errors import ExitCode, StudioError
from studio.engine.training.signals import FORCE_EXIT_WINDOW_S

if TYPE_CHECKING:  # the settings' pydantic models load only for the commands that use them
    from studio.engine.config import TrainConfig


@friendly_errors
def train_command(
    dataset: Path | None = typer.Option(None, "--dataset", "-d", help="The training data file."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="'builtin', a model folder or a Hugging Face id."
    ),
    profile: str | None = typer.Option(
        None, "--profile", "-p", help="Use case: chatbot, code, summarization, qa, creative or domain."
    ),
    config_file: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help="Settings file (JSON/YAML); the output of `studio plan --json` works as-is. Flags override it.",
    ),
    max_steps: int | None = typer.Option(None, "--max-steps", min=1, help="Stop after this many steps."),
    objective: str | None = typer.Option(
        None,
        "--objective",
        help="What the model learns. sft: imitate the answers. dpo: prefer the chosen answer over the rejected "
        "one (the usual choice for preference pairs). orpo: the same without a reference pass, imitating the "
        "chosen answer at once (faster, no SFT run needed first). kto: learn from single answers marked good or "
        "bad. (--method stays the adapter kind: lora, dora, ...) Default: dpo for a file of preference pairs, "
        "kto for labeled answers, sft otherwise.",
        case_sensitive=False,
    ),
    beta: float | None = typer.Option(
        None,
        "--beta",
        min=0.0,
        help="Preference tuning: how strongly the preferences count (default 0.1). With dpo and kto, higher "
        "keeps the model closer to where it started.",
    ),
    name: str | None = typer.Option(
        None, "--name", help="A name for the run (versions are counted per name)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Check everything and show the settings; train nothing."
    ),
    parallel: bool = typer.Option(
        False, "--parallel", help="Train even while another run is training on this machine."
    ),
) -> None:
    """Fine-tune a model on your data. Without --config, Studio plans the settings for this machine."""
    if not parallel and not dry_run:
        refuse_if_training()
    config = build_config(dataset, model, profile, config_file, max_steps, objective, beta)
    from studio.engine.models.resolve import resolve_model

    model_path = resolve_model(config.base_model)  # exit 4 before anything starts
    check_device(config)  # QLoRA or Unsloth on a machine without CUDA: refused before a run exists
    if dry_run:
        _dry_run(config, model_path)
        return
    from studio.engine.runs.creation import new_run
    from studio.engine.runs.registry import Registry

    record = new_run(Registry(), config, name)
    console.print(
        f"Run [bold]{record.id}[/] ({escape(record.name)} v{record.version}) in {record.run_dir}", highlight=False
    )
    raise typer.Exit(supervise(record.run_dir))


def refuse_if_training() -> None:
    """Two trainings at once on one machine share its memory and cores, and both crawl (or run out of
    memory): the second is refused and pointed at the queue, unless the user asks for it."""
    from studio.engine.runs.registry import Registry

    busy = Registry().training_runs()
    if busy:
        other = busy[0]
        raise StudioError(
            what="Another training run is already in progress on this machine.",
            why=f"Run {other.id} ({other.name} v{other.version}) is {other.status}; two at once would share "
            "the memory and processor and slow each other down, or run out of memory.",
            actions=[
                "Line this run up to start when the other one ends: `studio queue add` with the same options.",
                f"Wait for it, or stop it: `studio stop {other.id}`.",
                "Train both at once anyway: add `--parallel`.",
            ],
            code="training_busy",
        )


@friendly_errors
def resume_command(
    run: str = typer.Argument(..., help="Run id (or a unique start of it) or run name."),
) -> None:
    """Continue a paused, stopped or interrupted run from its last good checkpoint."""
    from studio.engine.runs.registry import Registry
    from studio.engine.training.control_channel import send_to_run_dir

    registry = Registry()
    registry.reconcile()
    record = registry.find(run)
    if record.status == "completed":
        raise StudioError(
            what=f"The run {record.id} has already finished.",
            why="There is nothing left to train.",
            actions=["Start a new run with `studio train`.", "See all runs with `studio runs`."],
            code="run_finished",
        )
    if record.pid is not None:  # a live worker (reconciled above), paused in memory: just wake it up
        from studio.engine.control import ControlCommand

        send_to_run_dir(record.run_dir, ControlCommand("resume"))
        console.print(f"Asked run {record.id} to continue.")
        return
    raise typer.Exit(supervise(record.run_dir))


def build_config(
    dataset: Path | None,
    model: str | None,
    profile: str | None,
    config_file: Path | None,
    max_steps: int | None,
    objective: str | None = None,
    beta: float | None = None,
) -> TrainConfig:
    """The file's settings (or a fresh plan for this machine), then the flags on top. Without an objective
    flag, a file of preference data is tuned on its preferences (SFT cannot train on it at all)."""
    from studio.engine.config import TrainConfig

    config = TrainConfig.load(config_file) if config_file is not None else _planned(dataset, model, profile)
    changes: dict[str, Any] = {}
    if dataset is not None:
        changes["dataset_path"] = str(dataset.expanduser().resolve())
    if model is not None:
        changes["base_model"] = model
    if profile is not None:
        changes["profile"] = profile
    if max_steps is not None:
        changes["max_steps"] = max_steps
    if objective is not None:
        changes["objective"] = objective.lower()
    if beta is not None:
        changes["beta"] = beta
    config = config.updated(**changes) if changes else config
    if not config.dataset_path:
        raise StudioError(
            what="Studio needs training data.",
            why="No dataset was given, neither with --dataset nor in the settings file.",
            actions=[
                "Pass a file: `studio train --dataset my_data.jsonl`.",
                "Try the sample: `studio train --dataset resources/samples/chatbot.jsonl`.",
            ],
            code="dataset_missing",
            exit_code=ExitCode.DATASET_UNUSABLE,
        )
    if not Path(config.dataset_path).exists():
        raise StudioError(
            what=f"The dataset {config.dataset_path} does not exist.",
            why="There is no file at that path.",
            actions=["Check the path and its spelling.", "Run `studio validate FILE` on the file you mean."],
            code="dataset_missing",
            exit_code=ExitCode.DATASET_UNUSABLE,
        )
    if objective is None and config.objective == "sft":  # SFT cannot learn from preference data at all
        config = _objective_for_data(config)
    return config


def _objective_for_data(config: TrainConfig) -> TrainConfig:
    """DPO for preference pairs, KTO for labeled answers, said on the console; SFT data stays SFT."""
    from studio.engine.datasets import inspect_file
    from studio.engine.objectives import objective_for_kind, objective_info

    chosen = objective_for_kind(inspect_file(config.dataset_path or "", mapping=config.column_mapping).kind)
    if chosen is None:
        return config
    info = objective_info(chosen)
    console.print(
        f"The file holds {'preference pairs' if chosen == 'dpo' else 'answers marked good or bad'}: training "
        f"with {chosen.upper()} (choose another with --objective).\n  {info.name}: {info.suits_when}\n  {info.beta}",
        highlight=False,
    )
    return config.updated(objective=chosen)


def check_device(config: TrainConfig) -> None:
    """The method and backend against this machine's accelerator, as the worker would check them later."""
    from studio.engine.hardware import probe
    from studio.engine.training.backends.base import check_method_supported
    from studio.engine.training.backends.choice import choose_backend, unsloth_installed

    hardware = probe()
    check_method_supported(config, hardware.device)
    choose_backend(hardware, config.backend, unsloth_installed())


def _planned(dataset: Path | None, model: str | None, profile: str | None) -> TrainConfig:
    from studio.engine.planner import plan_for

    measured = dataset if dataset is not None and dataset.exists() else None
    return plan_for(model, profile, measured).plan.config


def _dry_run(config: TrainConfig, model_path: Path) -> None:
    from datasets import disable_progress_bars
    from rich.table import Table

    from studio.engine.training.data import check_objective
    from studio.engine.training.setup import prepare_for_config

    disable_progress_bars()  # the table below is the output; library progress bars would garble it
    prepared = prepare_for_config(config, model_path)
    check_objective(config.objective, prepared.train.column_names)
    table = Table(title="Dry run: nothing will be trained")
    table.add_column("Setting", style="bold")
    table.add_column("Value")
    for key, value in config.model_dump(mode="json").items():
        table.add_row(key, escape(str(value)))
    console.print(table)
    held = len(prepared.eval) if prepared.eval is not None else 0
    console.print(
        f"Model folder: {model_path}\nExamples: {len(prepared.train)} to train on, {held} held out.",
        highlight=False,
    )


def supervise(run_dir: Path) -> int:
    """Start the worker for `run_dir`, show its progress, forward Ctrl-C as "stop", return its exit code."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from studio.engine.events import Event
    from studio.engine.runs.registry import Registry
    from studio.engine.training.supervisor import Supervisor

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[stats]}"),
        TimeRemainingColumn(),
        console=console,
    )
    task = progress.add_task("Starting", total=None, stats="")

    def on_event(event: Event) -> None:
        extra = getattr(event, "extra", {})
        if event.kind == "heartbeat":
            text = str(getattr(event, "message", "") or event.phase)
            progress.update(task, description=text[:1].upper() + text[1:])
        elif event.kind == "started":
            resumed = event.resumed_from_step
            progress.update(task, description="Training", total=event.total_steps, completed=resumed or 0)
            progress.console.print(
                f"Training on {event.device} with {event.backend} "
                f"({event.train_examples} examples, {event.total_steps} steps)"
                + (f", resuming at step {resumed}" if resumed else ""),
                highlight=False,
            )
        elif event.kind == "progress":
            rate = f"{event.tokens_per_s:.0f} tok/s" if event.tokens_per_s else ""
            loss = f"loss {event.loss:.4f}" if event.loss is not None else ""
            progress.update(
                task,
                description="Training",
                completed=event.step,
                total=event.total_steps,
                stats=f"{loss}  {rate}",
            )
        elif event.kind == "eval":
            progress.console.print(f"Step {event.step}: held-out loss {event.eval_loss:.4f}", highlight=False)
        elif event.kind == "checkpoint":
            progress.console.print(f"[dim]Checkpoint at step {event.step}[/]", highlight=False)
        elif event.kind in {"anomaly", "recovery"}:
            progress.console.print(f"[yellow]{escape(event.message)}[/]", highlight=False)
        elif event.kind == "paused":
            progress.update(task, description="Paused")
        elif event.kind == "resumed":
            progress.update(task, description="Training")
        elif event.kind == "error":
            progress.stop()
            report_error_event(event)
        del extra

    def on_silence(seconds: float) -> None:
        progress.console.print(
            f"[yellow]The training process has been silent for {seconds:.0f} s; it may be stuck.[/]",
            highlight=False,
        )

    def on_hang(seconds: float) -> None:
        progress.console.print(f"[red]No word from the training process for {seconds:.0f} s: ending it.[/]")

    supervisor = Supervisor(run_dir, on_event=on_event, on_silence=on_silence, on_hang=on_hang)
    interrupted_at: list[float] = []

    def on_interrupt(_signum: int, _frame: FrameType | None) -> None:
        # The worker runs in its own session (closing this terminal does not kill it), so Ctrl-C reaches it
        # only through here: the first asks for a checkpoint, a second within a few seconds ends it now.
        now = time.monotonic()
        if interrupted_at and now - interrupted_at[-1] < FORCE_EXIT_WINDOW_S:
            progress.console.print("Stopping now, without a checkpoint (the last one is kept)…")
            supervisor.kill()
            return
        interrupted_at.append(now)
        progress.console.print("Stopping after the current step and saving a checkpoint… (Ctrl-C again: now)")
        supervisor.stop()

    previous = {sig: signal.signal(sig, on_interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with progress:
            supervisor.start()
            outcome = supervisor.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if outcome.status == "interrupted":
        Registry().set_status(run_dir.name, "interrupted")
    _closing_words(run_dir.name, outcome)
    return outcome.exit_code if outcome.exit_code >= 0 else int(ExitCode.ERROR)


def report_error_event(event: Any) -> None:
    report_error(StudioError(what=event.message, why=event.hint, actions=list(event.actions), code=event.code))


def _closing_words(run_id: str, outcome: Any) -> None:
    last = outcome.last_event
    if outcome.status == "completed" and last is not None:
        console.print(
            f"[bold green]Done.[/] {escape(last.summary)}\nAdapter: {last.adapter_path}", highlight=False
        )
    elif outcome.status == "stopped":
        console.print(f"Stopped with a checkpoint. Continue with: studio resume {run_id}")
    elif outcome.status == "paused":
        console.print(f"Paused and memory released. Continue with: studio resume {run_id}")
    elif (crash := outcome.crash_error(run_id)) is not None:
        report_error(crash)


def register(app: typer.Typer) -> None:
    app.command("train")(train_command)
    app.command("resume")(resume_command)
