"""The real thing: the built-in SmolLM2-135M fine-tuned on the Pip chatbot sample through the real worker.

A few dozen CPU steps must lower the loss, and the saved adapter must reload with PEFT and change what the
model says (greedy decoding, so the comparison is deterministic).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.paths import resources_dir
from studio.engine.runs.folders import create_run_dir
from studio.engine.training.supervisor import Supervisor

PROMPTS = ["How do I keep my houseplants alive?", "What is a good way to start running?"]


def _greedy(model, tokenizer, prompt: str) -> str:
    import torch

    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)
    inputs = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=24, do_sample=False)
    return tokenizer.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


@pytest.mark.slow
def test_builtin_model_learns_the_sample_persona(builtin_model_dir: Path, tmp_path: Path):
    config = TrainConfig.from_dict({
        "base_model": "builtin", "dataset_path": str(resources_dir() / "samples" / "chatbot.jsonl"),
        "max_steps": 24, "micro_batch_size": 4, "gradient_accumulation": 1, "max_length": 128,
        "learning_rate": 1e-3, "lr_scheduler": "constant", "warmup_ratio": 0.0, "lora_r": 16, "lora_alpha": 32,
        "lora_dropout": 0.0, "eval_fraction": 0.1, "eval_every_steps": None, "checkpoint_every_steps": 100,
    })
    run_dir = create_run_dir(config, "builtin-e2e", root=tmp_path)
    supervisor = Supervisor(run_dir, env={"OMP_NUM_THREADS": "2"})
    supervisor.start()
    outcome = supervisor.wait(timeout=900)
    assert outcome.exit_code == 0, (run_dir / "logs" / "worker.stderr.log").read_text()[-3000:]

    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    curve = [e["loss"] for e in events if e["event"] == "progress"]
    assert len(curve) == 24
    assert sum(curve[-6:]) / 6 < sum(curve[:6]) / 6, curve
    started = next(e for e in events if e["event"] == "started")
    assert started["backend"] == "hf" and started["device"] == "cpu"

    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(builtin_model_dir)
    base = AutoModelForCausalLM.from_pretrained(builtin_model_dir)
    before = [_greedy(base, tokenizer, prompt) for prompt in PROMPTS]
    tuned = PeftModel.from_pretrained(base, str(run_dir / "final" / "adapter"))
    after = [_greedy(tuned, tokenizer, prompt) for prompt in PROMPTS]
    assert before != after
    assert any("Pip" in answer for answer in after), after  # the sample's persona shows through
