"""Library commands: `studio show`, `studio compare`, `studio chat`, `studio quality`, `studio clean`,
`studio delete`. Heavy libraries are imported inside the commands, never at module level.
"""

from __future__ import annotations

import sys
import threading
from typing import Annotated, Any

import typer
from rich.table import Table

from studio.cli.output import console, friendly_errors, print_json

RunRef = Annotated[str, typer.Argument(help="Run id (or a unique start of it), name, or name@version.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print stable JSON instead of text.")]
YesFlag = Annotated[bool, typer.Option("--yes", "-y", help="Go ahead without asking.")]


def _registry() -> Any:
    from studio.engine.runs.registry import Registry

    return Registry()


@friendly_errors
def show(run: RunRef, as_json: JsonFlag = False) -> None:
    """Everything about one run: version, lineage, results, quality check, disk use, tags and notes."""
    from studio.engine.library.disk import format_bytes, run_usage
    from studio.engine.library.quality import load_report
    from studio.engine.runs.lineage import ancestors, children

    registry = _registry()
    record = registry.find(run)
    runs = registry.list_runs()
    record = next((r for r in runs if r.id == record.id), record)
    usage = run_usage(record)
    report = load_report(record.run_dir)
    data = {
        **record.to_dict(),
        "tags": registry.tags(record.id), "notes": registry.notes(record.id),
        "lineage": {"ancestors": [f"{r.name}@{r.version}" for r in ancestors(runs, record.id)],
                    "children": [f"{r.name}@{r.version}" for r in children(runs, record.id)]},
        "disk": usage.to_dict(), "quality": report.to_dict() if report else None,
    }
    if as_json:
        print_json(data)
        return
    console.print(f"[bold]{record.name} {record.version}[/]  [dim]{record.id}[/]  status: {record.status}")
    console.print(f"Base model: {record.base_model}   Dataset: {record.dataset}")
    console.print(f"Created {record.created_at}   finished {record.finished_at or '-'}")
    if data["lineage"]["ancestors"]:
        chain = [*data["lineage"]["ancestors"], f"{record.name}@{record.version}"]
        console.print("Lineage: " + " → ".join(chain))
    if data["lineage"]["children"]:
        console.print("Continued as: " + ", ".join(data["lineage"]["children"]))
    metrics = {k: v for k, v in record.metrics.items()
               if isinstance(v, int | float) and not isinstance(v, bool)}
    if metrics:
        console.print("Results: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    if report:
        console.print(f"Quality check: {report.verdict}")
    console.print("Disk: " + ", ".join(f"{part} {format_bytes(usage.to_dict()[part])}"  # type: ignore[arg-type]
                                       for part in ("checkpoints", "final", "exports", "caches", "other"))
                  + f" (total {format_bytes(usage.total)})")
    if data["tags"]:
        console.print("Tags: " + ", ".join(data["tags"]))
    for note in data["notes"]:
        console.print(f"Note: {note}")


@friendly_errors
def compare(
    runs: Annotated[list[str], typer.Argument(help="Two to five runs.")],
    by: Annotated[str, typer.Option(help="Align curves by 'step' or 'tokens' seen.")] = "step",
    as_json: JsonFlag = False,
) -> None:
    """Compare 2 to 5 runs: results side by side (best marked) and the settings that differ."""
    from studio.engine.errors import StudioError
    from studio.engine.library.compare import compare_runs

    if by not in ("step", "tokens"):
        raise StudioError(what=f"'{by}' is not a way to align curves.", why="Curves align by step or tokens.",
                          actions=["Use --by step or --by tokens."], code="compare_axis")
    registry = _registry()
    comparison = compare_runs([registry.find(ref) for ref in runs], axis=by)  # type: ignore[arg-type]
    if as_json:
        print_json(comparison.to_dict())
        return
    labels = {r.id: f"{r.name} {r.version}" for r in comparison.runs}
    table = Table(title="Results (★ = best)")
    table.add_column("metric")
    for label in labels.values():
        table.add_column(label, justify="right")
    for metric in comparison.metrics.metrics:
        values = comparison.metrics.values[metric.key]
        if all(v is None for v in values.values()):
            continue
        best = comparison.metrics.best[metric.key]
        cells = ["-" if values[rid] is None else f"{values[rid]:.4g}" + (" ★" if rid in best else "")
                 for rid in labels]
        table.add_row(metric.label, *cells)
    console.print(table)
    if not comparison.config_diff:
        console.print("The runs used the same settings.")
        return
    diff = Table(title="Settings that differ")
    diff.add_column("setting")
    for label in labels.values():
        diff.add_column(label)
    for row in comparison.config_diff:
        diff.add_row(row.field, *[str(row.values[rid]) for rid in labels])
    console.print(diff)


@friendly_errors
def chat(
    run: RunRef,
    base: Annotated[bool, typer.Option("--base", help="Let the base model answer too.")] = False,
    prompt: Annotated[str | None, typer.Option(help="Ask one question and exit.")] = None,
    temperature: Annotated[float, typer.Option(help="0 always answers the same; higher varies more.")] = 0.7,
    top_p: Annotated[float, typer.Option(help="Sample only from the most likely words (0-1).")] = 0.9,
    max_tokens: Annotated[int, typer.Option(help="Longest answer, in tokens.")] = 128,
) -> None:
    """Talk to a trained run in the terminal (an empty line or Ctrl-D ends the chat)."""
    from studio.engine.library.playground import GenerationSettings, Playground, targets_for
    from studio.engine.runs.active import default_run

    record = default_run(_registry(), run)
    settings = GenerationSettings(temperature, top_p, max_tokens)
    playground = Playground(targets_for([record], include_base=base))
    console.print(f"[dim]Loading {record.name} {record.version}…[/]")
    playground.load()
    labels = {t.key: t.label for t in playground.targets}
    current: list[str] = []

    def on_chunk(key: str, text: str) -> None:
        if not current or current[-1] != key:
            current.append(key)
            sys.stdout.write(f"\n{labels[key]}: ")
        sys.stdout.write(text)
        sys.stdout.flush()

    while True:
        question = prompt if prompt is not None else _ask()
        if not question:
            return
        current.clear()
        playground.ask(question, settings, on_chunk, threading.Event())
        sys.stdout.write("\n\n")
        if prompt is not None:
            return


def _ask() -> str:
    try:
        return console.input("[bold]You:[/] ").strip()
    except EOFError:
        return ""


@friendly_errors
def quality(run: RunRef, as_json: JsonFlag = False) -> None:
    """Check a trained run against its base model on the held-out data, and save the report into the run."""
    from studio.engine.library.quality import evaluate_quality

    record = _registry().find(run)
    from studio.engine.progress import QUIET, Callbacks

    shown = Callbacks(lambda message, _f: console.print(f"[dim]{message}…[/]"))
    report = evaluate_quality(record, task=QUIET if as_json else shown)
    if as_json:
        print_json(report.to_dict())
        return
    console.print(report.verdict)
    if report.base and report.tuned:
        console.print(f"Held-out loss: base {report.base.loss:.4f} → tuned {report.tuned.loss:.4f}; "
                      f"perplexity {report.base.perplexity:.2f} → {report.tuned.perplexity:.2f}")
    if report.qa_base and report.qa_tuned:
        console.print(f"Answers: exact match {report.qa_base.exact_match:.0%} → "
                      f"{report.qa_tuned.exact_match:.0%}, "
                      f"token F1 {report.qa_base.token_f1:.2f} → {report.qa_tuned.token_f1:.2f}")
    for metric in report.metrics:
        if metric.key == "rouge_l":
            console.print(f"Summaries: ROUGE-L {metric.base:.2f} → {metric.tuned:.2f}")
        elif metric.key == "tests_passed":
            console.print(f"Code: tests passed {metric.base:.0%} → {metric.tuned:.0%}")
    if report.judge is not None:
        console.print(report.judge.sentence, markup=False)
    if report.worse_examples:
        console.print(f"Examples that got worse ({len(report.worse_examples)} shown):")
        for example in report.worse_examples:
            console.print(f"  Prompt: {str(example.get('prompt', ''))[-120:]!r}\n"
                          f"    base:  {str(example.get('base', ''))[:120]!r}\n"
                          f"    tuned: {str(example.get('tuned', ''))[:120]!r}\n"
                          f"    {example.get('metric', '')}: {example.get('base_score')} → "
                          f"{example.get('tuned_score')}", markup=False)


@friendly_errors
def clean(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only show what would be removed.")] = False,
    yes: YesFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Free disk space: intermediate checkpoints of completed runs (the best and the last are kept)."""
    from studio.engine.library.disk import apply_cleanup, format_bytes, plan_cleanup

    registry = _registry()
    plan = plan_cleanup(registry.list_runs())
    if as_json and (dry_run or not plan.items):
        print_json({**plan.to_dict(), "freed_bytes": 0})
        return
    if not as_json:
        if not plan.items:
            console.print("Nothing to clean up: completed runs hold only their best and final checkpoints.")
            return
        for item in plan.items:
            console.print(f"{format_bytes(item.bytes):>9}  {item.path}  [dim]({item.reason})[/]")
        console.print(f"[bold]{format_bytes(plan.total_bytes)}[/] can be freed.")
        if dry_run:
            return
    if not yes and not typer.confirm("Remove these files?", default=False):
        console.print("Nothing was removed.")
        return
    freed = apply_cleanup(plan, registry, confirm=True)
    if as_json:
        print_json({**plan.to_dict(), "freed_bytes": freed})
    else:
        console.print(f"Freed {format_bytes(freed)}.")


@friendly_errors
def delete(run: RunRef, yes: YesFlag = False) -> None:
    """Delete a run: its folder and its place in the library, together."""
    from studio.engine.library.disk import delete_run, format_bytes

    registry = _registry()
    record = registry.find(run)
    question = f"Delete {record.name} {record.version} and all its files?"
    if not yes and not typer.confirm(question, default=False):
        console.print("Nothing was deleted.")
        return
    freed = delete_run(registry, record.id, confirm=True)
    console.print(f"Deleted {record.name} {record.version} ({format_bytes(freed)} freed).")


def register(app: typer.Typer) -> None:
    for command in (show, compare, chat, quality, clean, delete):
        app.command(command.__name__)(command)
