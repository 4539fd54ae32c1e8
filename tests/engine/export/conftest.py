"""Runs to export: a LoRA adapter on the real built-in model, and fast ones on the tiny model.

The adapters are real PEFT adapters with random (not zero) weights, so merging them really changes the
model's outputs and every export has something to carry over.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.events import Completed, Eval, Started
from studio.engine.models.builtin import BUILTIN_MODEL_ID

RUN_ID = "20261123-120000-chatbot-export-test"


def make_adapter(model_dir: Path, target: Path, seed: int, scale: float) -> Path:
    """A LoRA adapter with random A and B (B shrunk by `scale` so the merged model stays coherent)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj", "down_proj"],
                        init_lora_weights=False, task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.mul_(scale)
    peft_model.save_pretrained(target)
    AutoTokenizer.from_pretrained(model_dir).save_pretrained(target)
    return target


def make_run(root: Path, base_model: str, adapter: Path, run_id: str = RUN_ID) -> Path:
    """A run folder as the trainer leaves it: config.json, events.jsonl and final/adapter."""
    run_dir = root / run_id
    TrainConfig(base_model=base_model, profile="chatbot", lora_r=8, lora_alpha=16,
                dataset_path="/data/support-chats.jsonl", max_steps=40).save(run_dir / "config.json")
    shutil.copytree(adapter, run_dir / "final" / "adapter")
    events = [
        Started(run_id=run_id, seq=0, train_examples=180, eval_examples=20, total_steps=40),
        Eval(run_id=run_id, seq=1, step=20, eval_loss=1.91),
        Eval(run_id=run_id, seq=2, step=40, eval_loss=1.73),
        Completed(run_id=run_id, seq=3, step=40, metrics={"train_loss": 1.62, "wall_time_s": 312.5}),
    ]
    (run_dir / "events.jsonl").write_text("".join(e.to_json() + "\n" for e in events), encoding="utf-8")
    return run_dir


@pytest.fixture(scope="session")
def builtin_adapter(builtin_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("adapters") / "builtin"
    return make_adapter(builtin_model_dir, target, seed=1, scale=0.02)


@pytest.fixture(scope="session")
def builtin_run(builtin_adapter: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tmp_path_factory.mktemp("runs"), BUILTIN_MODEL_ID, builtin_adapter)


@pytest.fixture(scope="session")
def tiny_adapters(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("tiny-adapters")
    return [make_adapter(tiny_model_dir, root / f"a{seed}", seed=seed, scale=1.0) for seed in (1, 2)]


@pytest.fixture
def run_factory() -> Callable[..., Path]:
    """`make_run` for tests that need a run in a particular place."""
    return make_run


@pytest.fixture
def tiny_run(tiny_model_dir: Path, tiny_adapters: list[Path], tmp_path: Path) -> Path:
    return make_run(tmp_path / "runs", str(tiny_model_dir), tiny_adapters[0], run_id="tiny-run")
