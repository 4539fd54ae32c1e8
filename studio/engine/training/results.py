"""What a run reports at its end: the steps it planned, the best state restored, its metrics and its verdict.

Only the recipe imports this module (inside the worker process), so torch and PEFT load at its top.
"""

from __future__ import annotations

import math
import resource
from pathlib import Path
from typing import Any

import torch
from peft import set_peft_model_state_dict
from safetensors.torch import load_file
from transformers import Trainer

from studio.engine.anomalies import RunSummary, summarize_run
from studio.engine.anomalies.summary import read_events
from studio.engine.events import Completed
from studio.engine.runs.folders import events_file
from studio.engine.training import checkpoints
from studio.engine.training.callbacks import StudioCallback


def total_steps(trainer: Trainer) -> int:
    """The optimizer steps the run will take, as the Trainer will compute them."""
    args = trainer.args
    if args.max_steps and args.max_steps > 0:
        return int(args.max_steps)
    batches = len(trainer.get_train_dataloader())
    per_epoch = max(1, math.ceil(batches / args.gradient_accumulation_steps))
    return math.ceil(per_epoch * args.num_train_epochs)


def restore_best(trainer: Trainer, run_dir: Path) -> int | None:
    """Early stopping: put the best checkpoint's adapter weights back before saving the final adapter."""
    best = checkpoints.best(run_dir)
    if best is None:
        return None
    weights = best.path / "adapter_model.safetensors"
    if not weights.exists():
        return None
    set_peft_model_state_dict(trainer.model, load_file(str(weights)))
    return best.step


def final_metrics(
    trainer: Trainer, callback: StudioCallback, wall_s: float, restored_step: int | None
) -> dict[str, Any]:
    """The `completed` event's metrics: losses, tokens, time, memory, and the preference rewards if any."""
    history = trainer.state.log_history
    losses = [entry["loss"] for entry in history if "loss" in entry]
    evals = [entry["eval_loss"] for entry in history if "eval_loss" in entry]
    peak_rss = max(callback.peak_rss, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0)
    metrics: dict[str, Any] = {
        "steps": trainer.state.global_step,
        "first_loss": losses[0] if losses else None,
        "final_loss": losses[-1] if losses else None,
        "eval_loss": evals[-1] if evals else None,
        "best_eval_loss": min(evals) if evals else None,
        "tokens_seen": int(trainer.state.num_input_tokens_seen),
        "wall_s": round(wall_s, 2),
        "train_s": round(callback.active_s(), 2),
        "peak_rss": peak_rss,
        "early_stopped": callback.early_stopped,
        "restored_best_step": restored_step,
    }
    rewards = [entry for entry in history if "rewards/accuracies" in entry]
    if rewards:  # preference tuning (DPO, ORPO): where the last logged step left the pairs
        metrics["reward_accuracy"] = rewards[-1]["rewards/accuracies"]
        metrics["reward_margin"] = rewards[-1].get("rewards/margins")
    if torch.cuda.is_available():
        metrics["peak_gpu"] = float(torch.cuda.max_memory_allocated())
    return metrics


def summary(metrics: dict[str, Any]) -> str:
    """One plain sentence of what the run did, for the `completed` event."""
    parts = [f"Trained {metrics['steps']} steps"]
    if metrics["first_loss"] is not None and metrics["final_loss"] is not None:
        parts.append(f"loss {metrics['first_loss']:.3f} → {metrics['final_loss']:.3f}")
    if metrics["eval_loss"] is not None:
        parts.append(f"held-out loss {metrics['eval_loss']:.3f}")
    if metrics.get("reward_accuracy") is not None:
        parts.append(f"the chosen answer preferred in {metrics['reward_accuracy']:.0%} of the last pairs")
    if metrics["restored_best_step"] is not None:
        parts.append(f"best state from step {metrics['restored_best_step']} restored")
    return "; ".join(parts) + "."


def verdict(run_dir: Path, step: int) -> RunSummary:
    """The post-run summary from everything this run recorded (earlier workers included), as completed."""
    record = events_file(run_dir)
    recorded = read_events(record) if record.exists() else []
    return summarize_run([*recorded, Completed(run_id=run_dir.name, step=step)])
