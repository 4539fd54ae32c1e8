"""Fixtures for training tests: a small chat dataset with a learnable pattern, and run directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.runs.folders import create_run_dir
from tests.engine.training.worker_runs import write_chat_jsonl


@pytest.fixture
def chat_jsonl(tmp_path: Path) -> Path:
    return write_chat_jsonl(tmp_path / "chat.jsonl")


@pytest.fixture
def make_run(tmp_path: Path, tiny_model_dir: Path, chat_jsonl: Path):
    """Create a run directory for the tiny model: make_run(name, **config_overrides) -> run_dir."""

    def _make(name: str = "run", **overrides: object) -> Path:
        settings: dict[str, object] = {
            "base_model": str(tiny_model_dir),
            "dataset_path": str(chat_jsonl),
            "max_steps": 8,
            "micro_batch_size": 4,
            "gradient_accumulation": 1,
            "max_length": 128,
            "learning_rate": 5e-3,
            "lora_r": 8,
            "lora_alpha": 16,
            "lora_dropout": 0.0,
            "checkpoint_every_steps": 4,
            "eval_fraction": 0.1,
            "warmup_ratio": 0.0,
            "lr_scheduler": "constant",
        }
        settings.update(overrides)
        return create_run_dir(TrainConfig.from_dict(settings), name, root=tmp_path / "runs")

    return _make
