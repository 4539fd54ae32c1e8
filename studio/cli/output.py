"""Shared CLI output: readable text through rich for people, stable JSON for scripts, errors without tracebacks."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer

from studio.engine.errors import StudioError

if TYPE_CHECKING:
    from rich.console import Console

P = ParamSpec("P")
R = TypeVar("R")


_CONSOLES: dict[str, Console] = {}


def _console(name: str) -> Console:
    if name not in _CONSOLES:
        from rich.console import Console

        _CONSOLES[name] = Console(stderr=name == "err_console")
    return _CONSOLES[name]


def __getattr__(name: str) -> Console:
    """`console` and `err_console`, made on first use: a command that prints only JSON never imports rich."""
    if name not in {"console", "err_console"}:
        raise AttributeError(name)
    return _console(name)


def print_json(data: Any) -> None:
    """Machine-readable output: sorted keys, no colour, one document on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")


def report_error(error: StudioError) -> None:
    """What happened, why, and what to do; the texts are escaped, since paths and values may hold [brackets]."""
    from rich.markup import escape

    err_console = _console("err_console")
    err_console.print(f"[bold red]Error:[/] {escape(error.what)}", highlight=False)
    if error.why:
        err_console.print(f"[dim]Why:[/] {escape(error.why)}", highlight=False)
    if error.actions:
        err_console.print("What you can do:")
        for action in error.actions:
            err_console.print(f"  • {escape(action)}", highlight=False)


def friendly_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a StudioError into a plain message and its exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except StudioError as error:
            report_error(error)
            raise typer.Exit(int(error.exit_code)) from None
        except KeyboardInterrupt:
            _console("err_console").print("Interrupted.")
            raise typer.Exit(130) from None

    return wrapper
