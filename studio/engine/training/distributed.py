"""Scale-out with Hugging Face Accelerate: the same worker, started by `accelerate launch` once per device.

Studio never launches processes of its own for this: it builds the `accelerate launch` command (shown to
the user, run by the Supervisor) and lets Accelerate/torchrun start one worker per GPU (DDP, or FSDP from an
`accelerate config` file), on one machine or several. Rank 0 is the Studio worker as usual: it emits the
events, writes events.jsonl, seals checkpoints, updates the registry and saves the final adapter. Every
other rank is a follower (studio.engine.training.follower): it trains in lockstep (its gradients are averaged
with rank 0's) and says nothing.

This module imports nothing heavy at module level; the GUI shows `launch_command` output.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Any

from studio.engine.config import AnomalyMode

WORKER_MODULE = "studio.engine.training.worker"
DEFAULT_PORT = 29500


def rank() -> int:
    """This process's global rank under torchrun/accelerate (0 when not distributed)."""
    return _env_int("RANK", _env_int("LOCAL_RANK", 0))


def world_size() -> int:
    return _env_int("WORLD_SIZE", 1)


def anomaly_mode_for(mode: AnomalyMode, ranks: int) -> AnomalyMode:
    """Recovery (rollback, out-of-memory retry, a lower learning rate) acts on rank 0 alone and would split a
    distributed run, so there anomalies are reported and the user decides (stop, or pause and release)."""
    return "off" if ranks > 1 else mode


def is_main_process() -> bool:
    """Whether this process speaks for the run (events, checkpoints, registry): rank 0, or not distributed."""
    return rank() == 0


def launch_command(
    run_dir: Path,
    num_processes: int,
    *,
    cpu: bool = False,
    multi_node: dict[str, Any] | None = None,
    config_file: Path | None = None,
) -> list[str]:
    """The `accelerate launch` command that trains `run_dir` on `num_processes` devices.

    `multi_node` = {"num_machines": N, "machine_rank": R, "main_process_ip": IP, "main_process_port": P}:
    the same command runs on every machine with its own machine_rank; `num_processes` counts all of them.
    `config_file` is an `accelerate config` file (FSDP, DeepSpeed, mixed precision); its settings apply
    where no flag here overrides them. `cpu` trains on CPUs only (gloo), e.g. to try a setup without GPUs.
    """
    if num_processes < 1:
        raise ValueError("num_processes must be at least 1")
    command = [*_env_prefix(cpu, num_processes), _accelerate(), "launch"]
    if config_file is not None:
        command += ["--config_file", str(config_file)]
    if num_processes > 1 or multi_node:
        # torchrun starts the processes; `--multi_gpu` is Accelerate's name for that, GPUs or not (on CPUs
        # the worker asks for gloo itself: `--cpu` would fall back to a single process without MPI).
        if config_file is None:
            command.append("--multi_gpu")
    elif cpu:
        command.append("--cpu")
    command += ["--num_processes", str(num_processes)]
    if config_file is None:
        command += ["--mixed_precision", "no", "--dynamo_backend", "no"]  # the worker's own settings rule
    if multi_node:
        command += [
            "--num_machines", str(int(multi_node["num_machines"])),
            "--machine_rank", str(int(multi_node["machine_rank"])),
            "--main_process_ip", str(multi_node["main_process_ip"]),
            "--main_process_port", str(int(multi_node.get("main_process_port", DEFAULT_PORT))),
        ]
    else:
        command += ["--num_machines", "1", "--main_process_port", "0"]  # 0: a free port, two runs can coexist
    return [*command, "-m", WORKER_MODULE, str(run_dir)]


def _env_prefix(cpu: bool, num_processes: int) -> list[str]:
    """CPU-only several-process training: hide GPUs and tell Accelerate, through the environment."""
    if cpu and num_processes > 1:
        return ["env", "CUDA_VISIBLE_DEVICES=", "ACCELERATE_USE_CPU=true"]
    return []


def _accelerate() -> str:
    """The `accelerate` script of this environment (a venv need not be on PATH), else the one on PATH."""
    beside = Path(sys.executable).with_name("accelerate")
    return str(beside) if beside.exists() else (shutil.which("accelerate") or "accelerate")


def _env_int(name: str, default: int) -> int:
    try:
        return int(os.environ[name])
    except (KeyError, ValueError):
        return default
