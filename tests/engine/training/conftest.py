"""Fixtures for training tests: a small chat dataset with a learnable pattern, and run directories."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.runs import create_run_dir

WORDS = ["apple", "river", "stone", "cloud", "lamp", "garden", "window", "forest", "candle", "bridge"]


def write_chat_jsonl(path: Path, rows: int = 60, seed: int = 0) -> Path:
    """Conversations with a fixed persona and answer format, of varied lengths (so length grouping matters)."""
    rng = random.Random(seed)
    lines = []
    for i in range(rows):
        a, b = rng.randint(1, 20), rng.randint(1, 20)
        extra = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 30)))
        messages = [
            {"role": "user", "content": f"What is {a} plus {b}? {extra}".strip()},
            {"role": "assistant", "content": f"Pip here! {a} plus {b} makes {a + b}. Have a nice day!"},
        ]
        if i % 3 == 0:
            messages.insert(0, {"role": "system", "content": "You are Pip, a cheerful helper."})
        lines.append(json.dumps({"messages": messages}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


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


def worker_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "2", **extra}
    return env


def run_worker_process(run_dir: Path, timeout: float = 240, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "studio.engine.training.worker", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=worker_env(**env),
        check=False,
    )


def read_events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]


def losses(events: list[dict]) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in events if e["event"] == "progress"}
