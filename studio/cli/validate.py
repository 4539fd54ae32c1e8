"""`studio validate`: is this data file usable for training, and if not, exactly what to fix.

Exit codes: 0 usable (warnings allowed), 2 not usable, 4 model not found. `--json` prints the report
structure documented in docs/datasets.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from studio.cli.output import console, err_console, friendly_errors, print_json
from studio.engine.errors import ExitCode

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
_MARK = {"error": "✗", "warning": "!", "info": "i"}
_BAR_WIDTH = 40


@friendly_errors
def validate_command(
    path: Path = typer.Argument(..., help="The data file: JSONL, JSON, CSV/TSV, TXT or Parquet."),
    model: str | None = typer.Option(
        None, "--model", "-m", help="'builtin', a model folder or a Hugging Face id: adds token statistics."
    ),
    profile: str | None = typer.Option(
        None, "--profile", "-p", help="Use case: chatbot, code, summarization, qa, creative or domain."
    ),
    mapping: list[str] = typer.Option(
        [],
        "--mapping",
        help="Which column plays which role, e.g. --mapping question=user --mapping reply=assistant.",
    ),
    max_length: int | None = typer.Option(
        None, "--max-length", min=16, help="Longest example in tokens (default: the use case's hint)."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the report as JSON (see docs/datasets.md)."),
) -> None:
    """Check a dataset: what Studio understood, what is wrong and how to fix it, and token statistics."""
    from studio.engine.datasets import DatasetOptions, check, parse_mapping
    from studio.engine.profiles import get_profile
    from studio.engine.progress import QUIET, Callbacks

    use_case = get_profile(profile) if profile else None
    tokenizer_path = None
    if model is not None:
        from studio.engine.models.resolve import resolve_model

        tokenizer_path = resolve_model(model)
        if max_length is None:
            max_length = (use_case or get_profile(None)).max_length_hint
    options = DatasetOptions(
        mapping=parse_mapping(mapping) if mapping else None,
        tokenizer_path=tokenizer_path,
        max_length=max_length,
        profile=use_case.id if use_case else None,
    )
    with err_console.status("Reading the file…") as status:

        def progress(message: str, fraction: float) -> None:
            status.update(f"{message} ({fraction:.0%})")

        report = check(path, options, task=QUIET if json_output else Callbacks(progress), preview=0).report
    if json_output:
        print_json(report.to_dict())
    else:
        _render(report.to_dict(), model)
    if not report.usable:
        raise typer.Exit(int(ExitCode.DATASET_UNUSABLE))


def _render(report: dict[str, Any], model: str | None) -> None:
    from studio.engine.datasets.report import example_text
    from studio.engine.datasets.schemas import LABELS

    verdict = "[bold green]Usable[/]" if report["usable"] else "[bold red]Not usable[/]"
    console.print(f"{verdict}: {report['path']}", highlight=False)
    if report["format"]:
        console.print(
            f"  Format: {report['format']}"
            + (f", {report['encoding']}" if report["encoding"] else "")
            + f"; layout: {LABELS.get(report['schema'], report['schema']) if report['schema'] else 'unknown'}",
            highlight=False,
        )
    if report["mapping"]:
        console.print("  Columns: " + ", ".join(f"{c} → {r}" for c, r in report["mapping"].items()), highlight=False)
    if report["rows_read"] or report["usable"]:
        console.print(
            f"  Rows: {report['rows_read']:,} read, [bold]{report['rows_usable']:,} usable[/], "
            f"{report['rows_skipped']:,} skipped, {report['duplicates_removed']:,} duplicates left out",
            highlight=False,
        )
    split = report["split"]
    if split and report["usable"]:
        console.print(f"  Split: {split['train']:,} train / {split['eval']:,} validation ({split['reason']})")
    stats = report["stats"]
    if stats:
        _render_stats(stats, "per pair, longer side" if report["kind"] == "preference" else "per example")
    elif model is None and report["usable"]:
        console.print("  [dim]Add --model builtin for token statistics.[/]")
    for issue in report["issues"]:
        style = _STYLE[issue["severity"]]
        console.print(f"[{style}]{_MARK[issue['severity']]} {issue['message']}[/]", highlight=False)
        if issue["suggestion"]:
            console.print(f"    → {issue['suggestion']}", highlight=False)
        for example in issue["examples"][:3]:
            console.print(f"    [dim]line {example['line']}:[/] {escape(example_text(example))}", highlight=False)


def _render_stats(stats: dict[str, Any], unit: str) -> None:
    console.print(
        f"  Tokens ({Path(stats['tokenizer']).name}): {stats['total_tokens']:,} in total; {unit} "
        f"p50 {stats['p50']}, p90 {stats['p90']}, p99 {stats['p99']}, max {stats['max']}",
        highlight=False,
    )
    if stats["max_length"]:
        console.print(
            f"  Longer than {stats['max_length']} tokens: {stats['over_max_length']:,} "
            f"({stats['over_max_length_share']:.1%}); suggested max length {stats['suggested_max_length']}",
            highlight=False,
        )
    edges, counts = stats["histogram"]["edges"], stats["histogram"]["counts"]
    top = max(counts) if counts else 0
    for low, high, count in zip(edges, edges[1:], counts, strict=False):
        if count:
            bar = "█" * max(1, round(_BAR_WIDTH * count / top))
            console.print(f"    {low:>6}–{high - 1:<6} {bar} {count:,}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("validate")(validate_command)
