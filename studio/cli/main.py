"""Entry point `studio`: no subcommand opens the desktop app; a subcommand runs headless.

Each command lives in its own module; this file only registers them, importing nothing heavy, so
`studio --help` and the GUI start fast, and a command imports only its own module.
"""

from __future__ import annotations

import typer

# Each command's module: `studio CMD` imports only the module of CMD (every module for `studio --help`), so a
# command starts without paying for the others' imports (about 0.1 s, a tenth of a small model's download).
COMMANDS = {
    "doctor": "doctor", "models": "models", "plan": "plan", "validate": "validate",
    "train": "train", "resume": "train", "runs": "runs", "stop": "runs", "pause": "runs",
    "show": "library", "compare": "library", "chat": "library", "quality": "library", "clean": "library",
    "delete": "library", "export": "export", "merge": "export", "hub-login": "export", "handoff": "handoff",
    "queue": "queue", "schedule": "queue", "activate": "queue", "hardest": "hardest", "cloud": "cloud",
}
MODULES = tuple(dict.fromkeys(COMMANDS.values()))  # in the order `studio --help` lists them


def _root(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        from studio.app import run_app

        raise typer.Exit(run_app())


def build_app(argv: list[str] | None = None) -> typer.Typer:
    """The command-line app with the commands `argv` can reach: only its command's module when it names one,
    all of them otherwise (no command, `--help`, or a name typer should answer with its own message)."""
    import importlib

    app = typer.Typer(
        name="studio",
        help="Fine-tune small language models on your own data. Run without a command to open the app.",
        invoke_without_command=True,
        no_args_is_help=False,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.callback()(_root)
    first = next((arg for arg in argv or [] if not arg.startswith("-")), None)
    for module in (COMMANDS[first],) if first in COMMANDS else MODULES:
        importlib.import_module(f"studio.cli.{module}").register(app)
    return app


def __getattr__(name: str) -> typer.Typer:
    """`from studio.cli.main import app`: every command, as tests and the frozen bundle's help use it."""
    if name == "app":
        return build_app()
    raise AttributeError(name)


def main() -> None:
    """Worker mode (`--studio-worker RUN_DIR`, how a frozen bundle trains) and the GUI smoke test are
    dispatched before typer parses anything."""
    import sys

    from studio.engine.frozen import dispatch
    from studio.smoke import SMOKE_FLAG

    code = dispatch(sys.argv[1:])
    if code is None and sys.argv[1:] == [SMOKE_FLAG]:
        from studio.smoke import run_smoke_test

        code = run_smoke_test()
    if code is not None:
        raise SystemExit(code)
    build_app(sys.argv[1:])()


if __name__ == "__main__":
    main()
