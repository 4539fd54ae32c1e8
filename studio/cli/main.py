"""Entry point `studio`: no subcommand opens the desktop app; a subcommand runs headless.

Each command lives in its own module; this file only registers them, importing nothing heavy, so
`studio --help` and the GUI start fast.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="studio",
    help="Fine-tune small language models on your own data. Run without a command to open the app.",
    invoke_without_command=True,
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        from studio.app import run_app

        raise typer.Exit(run_app())


def _register() -> None:
    """Commands are added here, one module each."""
    from studio.cli import doctor, models, plan

    for module in (doctor, models, plan):
        module.register(app)
    from studio.cli import validate

    validate.register(app)
    from studio.cli import runs, train

    train.register(app)
    runs.register(app)
    from studio.cli import library

    library.register(app)
    from studio.cli import export

    export.register(app)
    from studio.cli import handoff

    handoff.register(app)
    from studio.cli import hardest, queue

    queue.register(app)
    hardest.register(app)
    from studio.cli import cloud

    cloud.register(app)


_register()


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
    app()


if __name__ == "__main__":
    main()
