"""Planner's predicted peak memory vs the measured peak RSS of real CPU training (built-in model, TRL SFTTrainer).

Each configuration trains a few steps in a fresh subprocess (so peak RSS belongs to that configuration
alone) with TRL's SFTTrainer and PEFT LoRA, the same libraries Studio's engine uses. Every row is
truncated to exactly `max_length` tokens, so every batch is the planner's worst case (batch x max_length).

    .venv/bin/python bench/memory_estimate.py            # all configurations, prints the table and ratios
    .venv/bin/python bench/memory_estimate.py --measure 4 512 0   # one measurement (used internally)

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
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

CONFIGS = [  # (micro_batch_size, max_length, gradient_checkpointing)
    (2, 256, False),
    (4, 512, False),
    (1, 1024, False),
    (4, 1024, True),
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


def predict(batch: int, length: int, checkpointing: bool) -> float:
    from studio.engine.config import TrainConfig
    from studio.engine.hardware import probe
    from studio.engine.models.facts import read_model_facts
    from studio.engine.planner import estimate

    config = TrainConfig(micro_batch_size=batch, gradient_accumulation=1, max_length=length,
                         gradient_checkpointing=checkpointing, precision="fp32", lora_r=16, lora_alpha=32)
    return estimate(config, probe(), read_model_facts("builtin"), None).peak_memory_mb.expected


def main() -> int:
    if len(sys.argv) == 5 and sys.argv[1] == "--measure":
        batch, length, checkpointing = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
        print(json.dumps(measure(batch, length, checkpointing)))
        return 0
    worst = 0.0
    print(f"{'batch':>5} {'length':>6} {'ckpt':>5} {'predicted MB':>13} {'measured MB':>12} {'ratio':>6} {'s/step':>7}")
    for batch, length, checkpointing in CONFIGS:
        result = subprocess.run(
            [sys.executable, __file__, "--measure", str(batch), str(length), "1" if checkpointing else "0"],
            capture_output=True, text=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"}, check=False,
        )
        if result.returncode != 0:
            print(result.stderr[-3000:], file=sys.stderr)
            return 1
        measured = json.loads(result.stdout.strip().splitlines()[-1])
        predicted = predict(batch, length, checkpointing)
        ratio = predicted / measured["peak_rss_mb"]
        worst = max(worst, abs(ratio - 1))
        print(f"{batch:>5} {length:>6} {checkpointing!s:>5} {predicted:>13.0f} {measured['peak_rss_mb']:>12.0f} "
              f"{ratio:>6.2f} {measured['s_per_step']:>7.1f}", flush=True)
    print(f"worst deviation: {worst:.0%} (limit {TOLERANCE:.0%})")
    return 0 if worst <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
