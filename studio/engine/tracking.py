"""Experiment tracking: TrainConfig.report_to -> the trainer's `report_to` plus the environment that keeps
each tracker local and offline-safe.

Trackers are reached only through the trainers' standard reporting (transformers' integration callbacks),
which read their settings from environment variables; this module only decides those values, so the worker
applies them before it builds the trainer. Off by default. A variable the user already set always wins.
  - tensorboard: event files in RUN_DIR/logs/tensorboard (TENSORBOARD_LOGGING_DIR);
  - wandb: offline files in RUN_DIR/logs/wandb unless an API key is set and the machine is not offline;
  - mlflow: a file store in RUN_DIR/mlruns.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from studio.engine.errors import StudioError

TRACKERS: tuple[str, ...] = ("tensorboard", "wandb", "mlflow")
TRACKER_NAMES = {"tensorboard": "TensorBoard", "wandb": "Weights & Biases", "mlflow": "MLflow"}  # as shown
PROJECT = "studio"
OFFLINE_FLAGS = ("HF_HUB_OFFLINE", "STUDIO_OFFLINE")


@dataclass(frozen=True)
class TrackingPlan:
    report_to: list[str] | str  # what the trainer's `report_to` gets: "none" when tracking is off
    env: dict[str, str] = field(default_factory=dict)

    def apply(self, environ: MutableMapping[str, str] | None = None) -> None:
        """Set the variables in this process, before the trainer (and with it the tracker) is created."""
        (os.environ if environ is None else environ).update(self.env)


def tensorboard_dir(run_dir: Path) -> Path:
    return run_dir / "logs" / "tensorboard"


def mlflow_dir(run_dir: Path) -> Path:
    return run_dir / "mlruns"


def tracker_installed(module: str) -> bool:
    """Checked without importing it: trackers are slow to import, and the settings form asks each time."""
    return importlib.util.find_spec(module) is not None


def plan_tracking(
    report_to: Sequence[str],
    run_dir: Path,
    run_name: str,
    environ: Mapping[str, str] | None = None,
    installed: Callable[[str], bool] = tracker_installed,
) -> TrackingPlan:
    """The trainer's `report_to` and the variables to set; a selected tracker that is not installed is a
    StudioError raised before any training starts."""
    environ = os.environ if environ is None else environ
    chosen = [name for name in TRACKERS if name in report_to]
    unknown = sorted(set(report_to) - set(TRACKERS))
    if unknown:
        raise StudioError(
            what=f"Studio cannot report to {', '.join(unknown)}.",
            why=f"The experiment trackers it knows are {', '.join(TRACKERS)}.",
            actions=["Pick one of those in the settings.", "Remove the others from `report_to`."],
            code="tracker_unknown",
        )
    missing = [name for name in chosen if not installed(name)]
    if missing:
        raise StudioError(
            what=f"Reporting to {' and '.join(missing)} is switched on, but it is not installed.",
            why="Studio does not ship every experiment tracker; they are optional add-ons.",
            actions=[
                f"Install it: pip install {' '.join(missing)}",
                "Or switch that tracker off in the settings (`report_to`).",
            ],
            code="tracker_missing",
        )
    if not chosen:
        return TrackingPlan(report_to="none")
    env: dict[str, str] = {}
    if "tensorboard" in chosen:
        env["TENSORBOARD_LOGGING_DIR"] = str(tensorboard_dir(run_dir))
    if "wandb" in chosen:
        offline = not environ.get("WANDB_API_KEY") or any(environ.get(flag) == "1" for flag in OFFLINE_FLAGS)
        env.update(
            WANDB_DIR=str(run_dir / "logs"),
            WANDB_PROJECT=PROJECT,
            WANDB_NAME=run_name,
            WANDB_SILENT="true",
        )
        if offline:
            env["WANDB_MODE"] = "offline"
    if "mlflow" in chosen:
        env.update(MLFLOW_TRACKING_URI=mlflow_dir(run_dir).resolve().as_uri(), MLFLOW_EXPERIMENT_NAME=PROJECT)
    return TrackingPlan(report_to=chosen, env={key: value for key, value in env.items() if key not in environ})
