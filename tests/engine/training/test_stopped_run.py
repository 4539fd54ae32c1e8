"""A run stopped before the end is not a dead end: export, the playground and `continue` take its last
verified checkpoint, and say which step it is from."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.errors import StudioError
from studio.engine.events import Event
from studio.engine.export.pipeline import export_run
from studio.engine.library.loading import adapter_dir_of
from studio.engine.runs.folders import create_run_dir
from studio.engine.runs.registry import Registry
from studio.engine.training import checkpoints
from studio.engine.training.final_adapter import usable_adapter
from studio.engine.training.supervisor import Supervisor
from tests.engine.training.worker_runs import write_chat_jsonl

SETTINGS = {"max_steps": 8, "micro_batch_size": 4, "gradient_accumulation": 1, "max_length": 96,
            "learning_rate": 5e-3, "lora_r": 8, "lora_alpha": 16, "checkpoint_every_steps": 2,
            "eval_fraction": 0.0, "warmup_ratio": 0.0}


def test_a_stopped_run_exports_continues_and_chats_from_its_last_checkpoint(tmp_path: Path, tiny_model_dir: Path):
    config = TrainConfig.from_dict({**SETTINGS, "base_model": str(tiny_model_dir),
                                    "dataset_path": str(write_chat_jsonl(tmp_path / "chat.jsonl"))})
    run_dir = create_run_dir(config, "stopped", root=tmp_path / "runs")
    registry = Registry()
    registry.create_run(run_dir.name, "stopped", config, run_dir)

    def stop_at_3(sup: Supervisor, event: Event) -> None:
        if event.kind == "progress" and event.step == 3:
            os.kill(sup.pid, signal.SIGTERM)

    sup = Supervisor(run_dir, on_event=lambda event: stop_at_3(sup, event), env={"OMP_NUM_THREADS": "2"})
    sup.start()
    outcome = sup.wait(timeout=300)
    assert outcome.status == "stopped", outcome
    assert not (run_dir / "final" / "adapter").exists()
    step = checkpoints.latest_good(run_dir).step

    adapter = usable_adapter(run_dir)
    assert adapter.from_checkpoint and adapter.step == step and adapter.describe() == f"the checkpoint at step {step}"

    exported = export_run(run_dir, "adapter")
    files = {path.name for path in exported.out_dir.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= files
    assert not files & {"optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json", "manifest.json"}
    assert f"checkpoint at step {step}" in (exported.out_dir / "README.md").read_text(encoding="utf-8")

    record = registry.get(run_dir.name)
    assert adapter_dir_of(record) == adapter.path  # what the playground and the quality check load
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), adapter.path)

    parent, child = registry.continue_config(run_dir.name)
    assert parent.id == run_dir.name and child.init_adapter == str(adapter.path)


def _sealed_checkpoint(run_dir: Path, step: int, adapter_config: dict[str, object]) -> Path:
    staged = run_dir / "staging" / f"checkpoint-{step}"
    staged.mkdir(parents=True)
    (staged / "adapter_config.json").write_text(json.dumps(adapter_config), encoding="utf-8")
    (staged / "adapter_model.safetensors").write_bytes(b"weights")
    return checkpoints.seal(staged, run_dir, step).path


def test_a_pissa_checkpoint_is_not_used_on_its_own(tmp_path: Path):
    run_dir = tmp_path / "pissa-run"
    _sealed_checkpoint(run_dir, 4, {"peft_type": "LORA", "init_lora_weights": "pissa_niter_4"})
    with pytest.raises(StudioError) as caught:
        usable_adapter(run_dir)
    assert caught.value.code == "adapter_missing" and "PiSSA" in caught.value.why


def test_a_damaged_last_checkpoint_falls_back_to_the_one_before(tmp_path: Path):
    run_dir = tmp_path / "run"
    _sealed_checkpoint(run_dir, 2, {"peft_type": "LORA"})
    latest = _sealed_checkpoint(run_dir, 4, {"peft_type": "LORA"})
    (latest / "adapter_model.safetensors").write_bytes(b"damaged")
    assert usable_adapter(run_dir).step == 2


def test_a_run_stopped_before_its_first_checkpoint_says_so(tmp_path: Path):
    with pytest.raises(StudioError) as caught:
        usable_adapter(tmp_path / "empty-run", "chatbot 1.0")
    assert caught.value.what == "chatbot 1.0 has nothing trained to use yet."
    assert "first checkpoint" in caught.value.why
