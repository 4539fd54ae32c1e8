"""A follower rank of a distributed run (`accelerate launch`, rank 1 and up): it trains in lockstep with rank 0
and says nothing.

The same model, data and seed as rank 0, no events and no side effects. The Trainer on every rank prepares
the model for DDP/FSDP, so gradients are averaged across ranks and all ranks hold the same weights; rank 0
alone saves them. Rank 0's decisions (stop, release, checkpoint, early stop) reach this rank through
studio.engine.training.lockstep, so it leaves the loop at the same step. Only entry.main imports this module,
after the stop handlers are up, so torch and transformers load at its top.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from transformers import Trainer, set_seed

from studio.engine.errors import ExitCode
from studio.engine.runs.folders import load_run_config
from studio.engine.training import checkpoints
from studio.engine.training.distributed import rank
from studio.engine.training.interrupted import TrainingInterrupted
from studio.engine.training.lockstep import FollowerCallback, Lockstep
from studio.engine.training.setup import load_training_splits, model_folder, new_trainer, select_backend


def run_follower(run_dir: Path) -> int:
    """Train as a non-main rank; returns the exit code rank 0 has for the same ending (130 stopped, 0
    otherwise). A summary of this rank's view goes to RUN_DIR/logs/rank-N.json, which shows it took part."""
    lockstep = Lockstep()
    lockstep.catch_signals()

    config = load_run_config(run_dir)
    backend, _reason = select_backend(config)
    model_path = model_folder(config)
    model, tokenizer = backend.load(config, model_path)
    data = load_training_splits(config, model_path, tokenizer)
    set_seed(config.seed)
    model = backend.apply_adapter(model, config)
    follower = FollowerCallback(lockstep)
    trainer = follower.trainer = new_trainer(backend, model, tokenizer, data, config, run_dir, [follower])
    resume = checkpoints.latest_good(run_dir)  # the same checkpoint rank 0 resumes from
    code = ExitCode.OK
    lockstep.training = True
    try:
        trainer.train(resume_from_checkpoint=str(resume.path) if resume else None)
    except TrainingInterrupted as stop:
        code = ExitCode.STOPPED if stop.outcome == "stopped" else ExitCode.OK
    lockstep.finish()  # with rank 0, which meets it at the same point (TrainingRecipe.train)
    write_rank_record(run_dir, trainer)
    return int(code)


def write_rank_record(run_dir: Path, trainer: Trainer) -> Path:
    """This rank's world size, steps and a checksum of its trainable weights (equal on every rank)."""
    model = trainer.model
    assert model is not None, "a Trainer always holds its model"
    weights = sum((float(param.detach().double().sum()) for param in model.parameters() if param.requires_grad), 0.0)
    record = {
        "rank": rank(),
        "world_size": int(trainer.args.world_size),
        "steps": int(trainer.state.global_step),
        "trainable_sum": weights,
        "pid": os.getpid(),
    }
    path = run_dir / "logs" / f"rank-{rank()}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path
