"""Where a Together AI fine-tuning job of a run stands, kept in RUN_DIR/together.json.

`prepare_together` (together_api.py) writes it before the runner starts (the Together model, the budget, the
uploaded file and Together's price estimate); the runner (`python -m studio.engine.cloud.together_runner
RUN_DIR`) adds the job's id, its last status, how many of its events were passed on, the running cost and
the outcome, so a runner started again on the folder reattaches to the same job instead of starting
another. Written aside and renamed, so a runner killed mid-write leaves the previous state whole.
docs/cloud-together.md lists the fields.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from studio.engine.errors import StudioError

TOGETHER_FILE = "together.json"
TOGETHER_FORMAT = 1
JOB_GPU = "Together AI fine-tuning"  # what cloud.json names as the "GPU" of a Together run


@dataclass
class TogetherLaunch:
    model: str  # Together's name of the base model
    budget_usd: float
    estimate_usd: float | None = None  # Together's price estimate for the job, when it gave one
    file_id: str | None = None  # the uploaded training file
    examples: int = 0  # rows in the uploaded file
    # Written by the runner:
    job_id: str | None = None
    status: str | None = None  # the job's last status as Together said it (pending, running, completed ...)
    seen_events: int = 0  # the job's events already passed on (Together lists them oldest first)
    total_steps: int = 0
    step: int = 0
    cost_usd: float = 0.0  # the running cost: Together's total_price, else the estimate times the progress
    outcome: str | None = None  # completed, stopped, budget, failed, interrupted
    imported_run_id: str | None = None  # the library version the adapter came back as
    format: int = TOGETHER_FORMAT

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def together_file(run_dir: Path) -> Path:
    return Path(run_dir) / TOGETHER_FILE


def has_together(run_dir: Path) -> bool:
    """Whether the run trains as a Together AI fine-tuning job (not on a rented machine)."""
    return together_file(run_dir).is_file()


def load_together(run_dir: Path) -> TogetherLaunch:
    path = together_file(run_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {item.name for item in fields(TogetherLaunch)}
        return TogetherLaunch(**{key: value for key, value in data.items() if key in known})
    except FileNotFoundError:
        raise StudioError(
            what="This run has no Together AI settings (together.json), so it cannot train there.",
            why=f"Studio looked for {path}.",
            actions=["Start it with `studio cloud train --provider together --budget USD RUN`, which writes them."],
            code="cloud_together_no_launch",
        ) from None
    except (ValueError, TypeError, OSError) as exc:
        raise StudioError(
            what="This run's Together AI settings (together.json) cannot be read.",
            why=f"{path}: {exc}",
            actions=["Start it again with `studio cloud train --provider together`, which writes them anew.",
                     "Check your Together AI jobs page for a job this run left running, and cancel it there."],
            code="cloud_together_launch_invalid",
        ) from None


def save_together(run_dir: Path, launch: TogetherLaunch) -> None:
    path = together_file(run_dir)
    partial = path.with_name(f".{TOGETHER_FILE}.{os.getpid()}.part")
    partial.write_text(json.dumps(launch.to_dict(), indent=2) + "\n", encoding="utf-8")
    partial.replace(path)
