"""`studio hardest RUN`: the examples a trained run fits worst, where mislabeled or broken rows show up, and
the next version's settings without the ones picked. Heavy libraries are imported inside the command.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from studio.cli.output import console, err_console, friendly_errors, print_json
from studio.engine.errors import StudioError

SPLITS = ("train", "eval", "all")


@friendly_errors
def hardest(
    run: Annotated[str, typer.Argument(help="Run id (or a unique start of it), name, or name@version.")],
    top: Annotated[int, typer.Option("--top", min=1, help="How many examples to show.")] = 20,
    split: Annotated[str, typer.Option("--split", help="Which examples: train, eval (held out) or all.")] = "all",
    as_json: Annotated[bool, typer.Option("--json", help="Print stable JSON instead of text.")] = False,
    exclude: Annotated[
        str | None, typer.Option("--exclude", help="Ranks to leave out of the next version, e.g. 1,3,5.")
    ] = None,
    save_config: Annotated[
        Path | None, typer.Option("--save-config", help="Where to write the next version's settings.")
    ] = None,
    queue: Annotated[
        bool, typer.Option("--queue", help="Add the next version (without the excluded examples) to the queue.")
    ] = False,
) -> None:
    """The examples with the highest loss after training, worst first: often mislabeled or broken rows.
    Pick some with --exclude, then --queue (or --save-config) to train the next version without them."""
    from studio.engine.library.hardest import load_report, next_version_config
    from studio.engine.runs.registry import Registry

    if split not in SPLITS:
        raise StudioError(
            what=f"'{split}' is not a split.",
            why="Examples are either trained on (train) or held out (eval).",
            actions=["Use --split train, --split eval or --split all."],
            code="hardest_split",
        )
    if (exclude is None) == (save_config is not None or queue):
        raise StudioError(
            what="--exclude goes with --queue or --save-config.",
            why="--exclude picks the examples to leave out; --queue trains the next version without them, "
            "--save-config writes its settings to a file.",
            actions=[
                f"Queue the next version: `studio hardest {shlex.quote(run)} --exclude 1,3 --queue`.",
                f"Or keep its settings: `studio hardest {shlex.quote(run)} --exclude 1,3 --save-config next.json`.",
            ],
            code="hardest_exclude_usage",
        )
    record = Registry().find(run)
    report = load_report(record.run_dir) or _score(record.run_dir)
    listing = report.top(len(report.examples), None if split == "all" else split)
    shown = listing[:top]
    saved: dict[str, Any] | None = None
    if exclude is not None:
        picked = [listing[rank - 1].fingerprint for rank in _ranks(exclude, len(listing))]
        config = next_version_config(record.config, picked)
        saved = {"config_file": str(config.save(save_config)) if save_config else None, "excluded": picked,
                 "excluded_total": len(config.exclude_examples), "queue_entry": None}
        if queue:
            from studio.engine.queue import RunQueue, estimate_duration

            entry = RunQueue().add(config, record.name, estimate_s=estimate_duration(config))
            saved["queue_entry"] = {"id": entry.id, "run_id": entry.run_id, "version": entry.version}
    if as_json:
        print_json(_json(record, report, split, listing, shown, saved))
        return
    _print(record, report, split, listing, shown, saved)


def _score(run_dir: Path) -> Any:
    """Build the report of a run that has none, with a progress bar on stderr (Ctrl-C cancels, saving nothing)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from studio.engine.library.hardest import score_run
    from studio.engine.progress import Callbacks

    err_console.print("This run has no hardest-examples report yet; scoring every example now.")
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=err_console, transient=True
    ) as progress:
        task = progress.add_task("Loading the model", total=1.0)
        return score_run(
            run_dir, Callbacks(lambda message, fraction: progress.update(task, description=message, completed=fraction))
        )


def _ranks(text: str, available: int) -> list[int]:
    """"1,3,5" -> [1, 3, 5]; each rank as shown by this command, checked against what there is."""
    ranks: list[int] = []
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        if not part.isdigit() or not 1 <= int(part) <= available:
            raise StudioError(
                what=f"'{part}' is not a rank in this list.",
                why=f"Ranks are the numbers in the first column, from 1 to {available}.",
                actions=["Pass ranks separated by commas, e.g. --exclude 1,3,5."],
                code="hardest_rank",
            )
        ranks.append(int(part))
    if not ranks:
        raise StudioError(
            what="--exclude names no example.",
            why="It was given without ranks.",
            actions=["Pass ranks separated by commas, e.g. --exclude 1,3,5."],
            code="hardest_rank",
        )
    return list(dict.fromkeys(ranks))


def _json(record: Any, report: Any, split: str, listing: list[Any], shown: list[Any],
          saved: dict[str, Any] | None) -> dict[str, Any]:
    from studio.engine.training.example_loss import preview

    return {
        "run": {"id": record.id, "name": record.name, "version": record.version},
        "step": report.step,
        "created_at": report.created_at,
        "split": split,
        "splits": report.splits,
        "matching": len(listing),
        "examples": [
            {"rank": rank, "split": e.split, "index": e.index, "fingerprint": e.fingerprint, "loss": e.loss,
             "tokens": e.tokens, "preview": preview(e.text), "text": e.text}
            for rank, e in enumerate(shown, start=1)
        ],
        "next_version": saved,
    }


def _print(record: Any, report: Any, split: str, listing: list[Any], shown: list[Any],
           saved: dict[str, Any] | None) -> None:
    from studio.engine.training.example_loss import preview

    if not listing:
        console.print(f"No {'' if split == 'all' else split + ' '}examples were scored for this run.")
        return
    table = Table(title=f"Hardest examples of {escape(record.name)} {record.version} (step {report.step})")
    table.add_column("#", justify="right")
    table.add_column("split")
    table.add_column("loss", justify="right")
    table.add_column("tokens", justify="right")
    table.add_column("example", no_wrap=True, overflow="ellipsis")
    width = max(40, console.width - 36)
    for rank, example in enumerate(shown, start=1):
        table.add_row(str(rank), example.split, f"{example.loss:.3f}", str(example.tokens),
                      escape(preview(example.text, width, keep_start=False)))
    console.print(table)
    console.print(f"Showing {len(shown)} of {len(listing)}. The loss is per trained token: higher means the "
                  "model finds the example harder to reproduce.", highlight=False)
    for name, counts in report.cut_splits().items():
        console.print(f"Only {counts['scored']} of {counts['total']} {_split_label(name)} examples were scored "
                      "(score_examples_limit).", highlight=False)
    if saved is not None:
        left_out = f"{len(saved['excluded'])} more examples left out ({saved['excluded_total']} in all)"
        if saved["queue_entry"]:
            version = saved["queue_entry"]["version"]
            console.print(f"Queued {escape(record.name)} {version}, {left_out}. Start the queue with "
                          "`studio queue run` (or Start queue in the app).", highlight=False)
        if saved["config_file"]:
            path = escape(saved["config_file"])
            args = escape(f"--config {shlex.quote(saved['config_file'])} --name {shlex.quote(record.name)}")
            console.print(
                f"Saved the next version's settings to {path}: {left_out}. Train it with "
                f"`studio train {args}`, or queue it with `studio queue add {args}`.",
                highlight=False,
            )
        return
    same_split = "" if split == "all" else f" --split {split}"
    console.print(
        "If some look wrong (a mislabeled, swapped or broken answer), leave them out of the next version: "
        f"`studio hardest {escape(record.id)}{same_split} --exclude 1,3 --queue` (ranks as shown).",
        highlight=False,
    )


def _split_label(name: str) -> str:
    return "held-out" if name == "eval" else "training"


def register(app: typer.Typer) -> None:
    app.command("hardest")(hardest)
