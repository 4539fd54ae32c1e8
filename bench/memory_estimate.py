"""Planner's predicted peak memory vs the measured peak RSS of real CPU training (built-in model, TRL trainers).

Each configuration trains a few steps in a fresh subprocess (so peak RSS belongs to that configuration
alone) with TRL's SFTTrainer and PEFT LoRA, the same libraries Studio's engine uses. Every row is
truncated to exactly `max_length` tokens, so every batch is the planner's worst case (batch x max_length).
The preference cases build their trainer with Studio's own `build_preference_trainer` (TRL's DPOTrainer,
ORPOTrainer or KTOTrainer with Studio's settings, no reference model: the base with the adapter disabled),
on pairs whose chosen and rejected answers both run past `max_length`.

    .venv/bin/python bench/memory_estimate.py            # all configurations, prints the table and ratios
    .venv/bin/python bench/memory_estimate.py dpo orpo   # only these objectives (sft, dpo, orpo, kto)
    .venv/bin/python bench/memory_estimate.py --measure 4 512 0   # one measurement (used internally)
    .venv/bin/python bench/memory_estimate.py --measure 2 256 0 dpo

Exits non-zero when any prediction is off by more than 20%.

Measured on the 2-core / 24 GiB reference machine (November 2026, heavily shared, so s/step is not a
speed figure), planner prediction after calibration in brackets:
    batch 2 x 256            peak RSS  3157 MB  (3204, ratio 1.01)
    batch 4 x 512            peak RSS  9096 MB  (9006, ratio 0.99)
    batch 4 x 1024 + ckpt    peak RSS 10077 MB (10018, ratio 0.99)
    batch 1 x 128            peak RSS  1615 MB  (1753, ratio 1.09)
    batch 4 x 256            peak RSS  5314 MB  (5138, ratio 0.97)
    batch 1 x 1024           peak RSS  4984 MB  (5138, ratio 1.03)   same tokens as 4 x 256: no L^2 term
    batch 8 x 512            killed by the OOM killer at 16.8 GB (16742 predicted)

Preference objectives, same machine (December 2026, TRL 1.16, transformers 5.25, PEFT 0.21, heavily shared;
Studio's defaults, lora_dropout 0.05, which TRL's `disable_dropout` turns off), prediction in brackets. DPO
2 x 256 and 2 x 512 + ckpt set PREFERENCE_LAYER_SHARE and PREFERENCE_HEAD_PER_VOCAB, the two ORPO runs
ORPO_HEAD_PER_VOCAB; DPO 1 x 512 and KTO were not fitted:
    DPO  batch 2 x 256       peak RSS  4387 MB  (4372, ratio 1.00)   chosen + rejected: 1,024 tokens a pass
    DPO  batch 1 x 512       peak RSS  4402 MB  (4372, ratio 0.99)   same tokens as 2 x 256: no L^2 term
    DPO  batch 2 x 512 + ckpt  peak RSS  4835 MB  (4846, ratio 1.00)
    ORPO batch 2 x 256       peak RSS  3995 MB  (3992, ratio 1.00)   unfused logits over both answers
    ORPO batch 1 x 512       peak RSS  3944 MB  (3992, ratio 1.01)
    KTO  batch 2 x 256       peak RSS  2750 MB  (2821, ratio 1.03)   completions + a KL batch without gradients
A second full run through this script (less load) measured DPO 4328 / 4403 / 4984, ORPO 3927 / 3981 and
KTO 2565 MB: ratios 0.97 to 1.02, KTO 1.10 (peak RSS varies by a few percent from run to run).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CONFIGS = [  # (micro_batch_size, max_length, gradient_checkpointing)
    (2, 256, False),
    (4, 512, False),
    (1, 1024, False),
    (4, 1024, True),
]
PREFERENCE_CONFIGS = [  # (objective, micro_batch_size, max_length, gradient_checkpointing); KTO needs batch > 1
    ("dpo", 2, 256, False),
    ("dpo", 1, 512, False),
    ("dpo", 2, 512, True),
    ("orpo", 2, 256, False),
    ("orpo", 1, 512, False),
    ("kto", 2, 256, False),
]
STEPS = 2  # peak RSS is reached in the second step, once AdamW states exist
TOLERANCE = 0.20


def measure(batch: int, length: int, checkpointing: bool) -> dict[str, float]:
    """Train STEPS steps and report this process's peak RSS in MB."""
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    from studio.engine.models.builtin import ensure_builtin

    torch.manual_seed(0)
    folder = ensure_builtin()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    sentence = "Studio measures how much memory training really needs on this machine. "
    rows = [{"text": f"{i} " + sentence * (length // 8)} for i in range(batch * STEPS)]
    with tempfile.TemporaryDirectory() as out:
        args = SFTConfig(
            output_dir=out,
            per_device_train_batch_size=batch,
            gradient_accumulation_steps=1,
            max_steps=STEPS,
            max_length=length,
            learning_rate=2e-4,
            gradient_checkpointing=checkpointing,
            bf16=False,
            fp16=False,
            use_cpu=True,
            packing=False,
            report_to=[],
            save_strategy="no",
            logging_steps=1,
            dataloader_num_workers=0,
            disable_tqdm=True,
        )
        lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM")
        trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                             processing_class=tokenizer, peft_config=lora)
        start = time.perf_counter()
        trainer.train()
        elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"peak_rss_mb": peak_mb, "s_per_step": elapsed / STEPS}


def measure_preference(objective: str, batch: int, length: int, checkpointing: bool) -> dict[str, float]:
    """Train STEPS steps with the TRL trainer and settings Studio's engine builds for this objective (DPO and
    KTO without a reference model: the base with the adapter disabled), every chosen and rejected answer
    (or KTO completion) long enough to fill `max_length`, and report this process's peak RSS in MB."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.engine.models.builtin import ensure_builtin
    from studio.engine.training.backends.hf import build_preference_trainer, new_adapter

    torch.manual_seed(0)
    folder = ensure_builtin()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    config = studio_config(objective, batch, length, checkpointing)
    model = new_adapter(model, config)
    good = "Studio measures how much memory preference training really needs on this machine. "
    bad = "Memory is whatever it is and nobody should bother measuring it on any machine at all. "
    answer = length // 8  # about 14 tokens a sentence: every answer runs past max_length and is cut there
    rows: list[dict[str, object]] = []
    for i in range(batch * STEPS):
        prompt = f"Question {i}: how much memory does training need?"
        if objective == "kto":  # one answer per row, alternately good and bad (KTO needs both kinds)
            rows.append({"prompt": prompt, "completion": (good if i % 2 == 0 else bad) * answer, "label": i % 2 == 0})
        else:
            rows.append({"prompt": prompt, "chosen": good * answer, "rejected": bad * answer})
    with tempfile.TemporaryDirectory() as out:
        staging = Path(out) / ".staging"  # Studio's trainers write beside their output folder, inside the run
        staging.mkdir()
        trainer = build_preference_trainer(model, tokenizer, Dataset.from_list(rows), None, config, staging, [])
        start = time.perf_counter()
        trainer.train()
        elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"peak_rss_mb": peak_mb, "s_per_step": elapsed / STEPS}


def studio_config(objective: str, batch: int, length: int, checkpointing: bool) -> Any:
    """The TrainConfig both the measurement and the prediction start from (Studio's defaults otherwise)."""
    from studio.engine.config import TrainConfig

    return TrainConfig.from_dict({
        "objective": objective, "micro_batch_size": batch, "gradient_accumulation": 1, "max_length": length,
        "gradient_checkpointing": checkpointing, "precision": "fp32", "lora_r": 16, "lora_alpha": 32,
        "max_steps": STEPS, "checkpoint_every_steps": 1000, "learning_rate": 2e-4, "logging_steps": 1,
        "eval_fraction": 0.0,
    })


def predict(batch: int, length: int, checkpointing: bool, objective: str = "sft") -> float:
    from studio.engine.config import TrainConfig
    from studio.engine.hardware import probe
    from studio.engine.models.facts import read_model_facts
    from studio.engine.planner import estimate

    config = TrainConfig(micro_batch_size=batch, gradient_accumulation=1, max_length=length,
                         gradient_checkpointing=checkpointing, precision="fp32", lora_r=16, lora_alpha=32,
                         objective=objective)
    return estimate(config, probe(), read_model_facts("builtin"), None).peak_memory_mb.expected


def run_case(objective: str, batch: int, length: int, checkpointing: bool) -> dict[str, float] | None:
    """One measurement in a fresh subprocess; None (and its error printed) when it failed."""
    args = [str(batch), str(length), "1" if checkpointing else "0"] + ([] if objective == "sft" else [objective])
    result = subprocess.run(
        [sys.executable, __file__, "--measure", *args],
        capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"}, check=False,
    )
    if result.returncode != 0:
        print(result.stderr[-3000:], file=sys.stderr)
        return None
    measured: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def main() -> int:
    if len(sys.argv) in (5, 6) and sys.argv[1] == "--measure":
        batch, length, checkpointing = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
        objective = sys.argv[5] if len(sys.argv) == 6 else "sft"
        if objective == "sft":
            print(json.dumps(measure(batch, length, checkpointing)))
        else:
            print(json.dumps(measure_preference(objective, batch, length, checkpointing)))
        return 0
    only = set(sys.argv[1:])  # e.g. `dpo orpo`: only those objectives
    cases = [("sft", *config) for config in CONFIGS] + PREFERENCE_CONFIGS
    worst = 0.0
    print(f"{'method':>6} {'batch':>5} {'length':>6} {'ckpt':>5} {'predicted MB':>13} {'measured MB':>12} "
          f"{'ratio':>6} {'s/step':>7}")
    for objective, batch, length, checkpointing in cases:
        if only and objective not in only:
            continue
        measured = run_case(objective, batch, length, checkpointing)
        if measured is None:
            return 1
        predicted = predict(batch, length, checkpointing, objective)
        ratio = predicted / measured["peak_rss_mb"]
        worst = max(worst, abs(ratio - 1))
        print(f"{objective:>6} {batch:>5} {length:>6} {checkpointing!s:>5} {predicted:>13.0f} "
              f"{measured['peak_rss_mb']:>12.0f} {ratio:>6.2f} {measured['s_per_step']:>7.1f}", flush=True)
    print(f"worst deviation: {worst:.0%} (limit {TOLERANCE:.0%})")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
