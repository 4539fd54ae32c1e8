"""Worker mode for the frozen desktop bundle.

Inside a PyInstaller bundle there is no `python -m`: the bundle's one executable is both the app and the
training worker, and a hidden first argument picks the role. Pure and import-light (the engine's supervisor
imports it, and the GUI start-up passes through it), so nothing heavy is imported until a worker runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

WORKER_FLAG = "--studio-worker"
MODULE_FLAG = "--studio-module"  # run a module as `python -m` would (export's quantizer child)
SCRIPT_FLAG = "--studio-script"  # run a Python script file (llama.cpp's GGUF converter)


def is_frozen() -> bool:
    """True inside a PyInstaller bundle, which sets `sys.frozen`."""
    return bool(getattr(sys, "frozen", False))


def frozen_worker_command(run_dir: Path) -> list[str]:
    """The bundle's executable restarting itself as a worker for `run_dir`."""
    return [sys.executable, WORKER_FLAG, str(run_dir)]


def module_command(module: str, *args: str) -> list[str]:
    """`python -m module args`, or the bundle's executable doing the same."""
    if is_frozen():
        return [sys.executable, MODULE_FLAG, module, *args]
    return [sys.executable, "-m", module, *args]


def script_command(script: Path, *args: str) -> list[str]:
    """`python script args`, or the bundle's executable doing the same (PYTHONPATH is honoured in both)."""
    if is_frozen():
        return [sys.executable, SCRIPT_FLAG, str(script), *args]
    return [sys.executable, str(script), *args]


def _run_python(kind: str, target: str, args: list[str]) -> int:
    """Inside the bundle: run a module or a script as the plain interpreter would, as `__main__`."""
    import os
    import runpy

    extra = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    sys.path[:0] = extra
    sys.argv = [target, *args]
    try:
        if kind == MODULE_FLAG:
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            runpy.run_path(target, run_name="__main__")
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    return 0


def dispatch(argv: list[str]) -> int | None:
    """Run the worker (or a helper module or script) when `argv` asks for it and return its exit code; None
    means "none of those", so the caller goes on to the normal command line."""
    if argv and argv[0] in (MODULE_FLAG, SCRIPT_FLAG) and len(argv) >= 2:
        return _run_python(argv[0], argv[1], argv[2:])
    if not argv or argv[0] != WORKER_FLAG:
        return None
    if is_frozen():
        import multiprocessing

        multiprocessing.freeze_support()  # a library that spawns helpers re-enters here, not in the app
    from studio.engine.training.entry import main as worker_main

    return worker_main(argv[1:])
