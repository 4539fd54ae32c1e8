"""Worker mode for the frozen desktop bundle.

Inside a PyInstaller bundle there is no `python -m`: the bundle's one executable is both the app and the
training worker, and a hidden first argument picks the role. Pure and import-light (the engine's supervisor
imports it, and the GUI start-up passes through it), so nothing heavy is imported until a worker runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

WORKER_FLAG = "--studio-worker"


def is_frozen() -> bool:
    """True inside a PyInstaller bundle, which sets `sys.frozen`."""
    return bool(getattr(sys, "frozen", False))


def frozen_worker_command(run_dir: Path) -> list[str]:
    """The bundle's executable restarting itself as a worker for `run_dir`."""
    return [sys.executable, WORKER_FLAG, str(run_dir)]


def dispatch(argv: list[str]) -> int | None:
    """Run the worker when `argv` asks for worker mode and return its exit code; None means "not a worker",
    so the caller goes on to the normal command line."""
    if not argv or argv[0] != WORKER_FLAG:
        return None
    if is_frozen():
        import multiprocessing

        multiprocessing.freeze_support()  # a library that spawns helpers re-enters here, not in the app
    from studio.engine.training.worker import main as worker_main

    return worker_main(argv[1:])
