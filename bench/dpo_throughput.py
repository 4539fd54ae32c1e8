"""DPO throughput: Studio's engine (through the real worker) vs a bare TRL DPOTrainer script.

Same model (the built-in SmolLM2-135M), same data (synthetic preference pairs whose answers run 15 to 240
words), same LoRA, batch and beta, on this CPU. Two runs, each in a fresh process, each counting real
(non-pad) tokens per second over the steps after a warm-up step:
  bare      TRL DPOTrainer with a LoRA peft_config (its reference: the base with the adapter disabled)
  identical Studio with the bare script's settings                  -> ratio must be >= 0.95

Usage: python bench/dpo_throughput.py [--steps 9] [--batch 4] [--max-length 256]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WARMUP = 1
WORDS = ["the", "a", "model", "learns", "small", "steps", "data", "answer", "question", "garden", "river", "light"]


def make_pairs(path: Path, rows: int = 400, seed: int = 0) -> Path:
    """Prompts with a longer, on-topic chosen answer and a short, flat rejected one."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(rows):
            words = rng.randint(15, 240)
            prompt = f"Question {i}: " + " ".join(rng.choice(WORDS) for _ in range(max(3, words // 4)))
            chosen = " ".join(rng.choice(WORDS) for _ in range(words))
            rejected = " ".join(rng.choice(WORDS) for _ in range(max(5, words // 3)))
            handle.write(json.dumps({"prompt": prompt, "chosen": chosen, "rejected": rejected}) + "\n")
    return path


def settings(args: argparse.Namespace) -> dict:
    return {
        "max_steps": args.steps,
        "micro_batch_size": args.batch,
        "gradient_accumulation": 1,
        "max_length": args.max_length,
        "learning_rate": 5e-5,
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.0,
        "warmup_ratio": 0.0,
        "lr_scheduler": "constant",
        "seed": 42,
        "beta": 0.1,
    }


def rate(points: list[tuple[float, int]]) -> float:
    """Tokens per second between the end of the warm-up step and the last step."""
    (t0, n0), (t1, n1) = points[WARMUP - 1], points[-1]
    return (n1 - n0) / (t1 - t0)


def conversational(row: dict) -> dict:
    """The pair in TRL's conversational form, as Studio normalizes it."""
    return {
        "prompt": [{"role": "user", "content": row["prompt"]}],
        "chosen": [{"role": "assistant", "content": row["chosen"]}],
        "rejected": [{"role": "assistant", "content": row["rejected"]}],
    }


# ---- bare TRL (runs in a child process) ----------------------------------------------------------------


def bare(data: Path, model_dir: str, cfg: dict, out: Path) -> None:
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import DPOConfig, DPOTrainer

    points: list[tuple[float, int]] = []

    class Clock(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                points.append((time.monotonic(), state.num_input_tokens_seen))

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    train = load_dataset("json", data_files=str(data))["train"]
    trainer = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir),
        processing_class=tokenizer,
        train_dataset=train.map(conversational, remove_columns=train.column_names),
        peft_config=LoraConfig(
            r=cfg["lora_r"], lora_alpha=cfg["lora_alpha"], lora_dropout=0.0, target_modules="all-linear",
            task_type="CAUSAL_LM",
        ),
        args=DPOConfig(
            output_dir=str(out.parent / "bare-out"),
            max_steps=cfg["max_steps"],
            per_device_train_batch_size=cfg["micro_batch_size"],
            gradient_accumulation_steps=1,
            learning_rate=cfg["learning_rate"],
            lr_scheduler_type="constant",
            max_length=cfg["max_length"],
            beta=cfg["beta"],
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            seed=cfg["seed"],
            include_num_input_tokens_seen="non_padding",
            bf16=False,  # fp32 like Studio on a CPU
            disable_tqdm=True,
            dataloader_num_workers=0,
        ),
        callbacks=[Clock()],
    )
    trainer.train()
    out.write_text(json.dumps({"tokens_per_s": rate(points)}))


# ---- Studio (the real worker) --------------------------------------------------------------------------


def studio(data: Path, cfg: dict, root: Path) -> dict:
    from studio.engine.config import TrainConfig
    from studio.engine.runs.folders import create_run_dir
    from studio.engine.training.supervisor import Supervisor

    config = TrainConfig.from_dict({**cfg, "base_model": "builtin", "dataset_path": str(data), "objective": "dpo",
                                    "eval_fraction": 0.0, "checkpoint_every_steps": 10_000})
    run_dir = create_run_dir(config, "dpo-identical", root=root)
    supervisor = Supervisor(run_dir)
    supervisor.start()
    outcome = supervisor.wait()
    if outcome.exit_code != 0:
        raise SystemExit(f"the Studio run failed ({outcome.exit_code}); see {run_dir}/logs")
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    progress = [e for e in events if e["event"] == "progress"]
    return {"tokens_per_s": rate([(e["elapsed_s"], e["tokens_seen"]) for e in progress])}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=9)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--bare-child", nargs=3, metavar=("DATA", "MODEL", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    cfg = settings(args)
    if args.bare_child:
        data, model_dir, out = args.bare_child
        bare(Path(data), model_dir, cfg, Path(out))
        return 0

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from studio.engine.models.builtin import ensure_builtin

    model_dir = ensure_builtin()
    with tempfile.TemporaryDirectory(prefix="studio-bench-") as tmp:
        root = Path(tmp)
        os.environ.setdefault("STUDIO_HOME", str(root / "home"))
        data = make_pairs(root / "pairs.jsonl")
        print(
            f"SmolLM2-135M DPO, LoRA r=16 all-linear, beta {cfg['beta']}, batch {args.batch} pairs, max_length "
            f"{args.max_length}, fp32, {args.steps} steps ({WARMUP} warm-up excluded), {os.cpu_count()} CPU cores",
            flush=True,
        )
        out = root / "bare.json"
        child = [sys.executable, __file__, "--steps", str(args.steps), "--batch", str(args.batch),
                 "--max-length", str(args.max_length), "--bare-child", str(data), str(model_dir), str(out)]
        subprocess.run(child, check=False, stdout=subprocess.DEVNULL, stderr=(root / "bare.log").open("w"))
        if not out.exists():
            raise SystemExit("The bare TRL run failed:\n" + (root / "bare.log").read_text()[-3000:])
        results = {"bare": json.loads(out.read_text()), "identical": studio(data, cfg, root / "runs")}
    for name, result in results.items():
        print(f"{name:>10}: {result['tokens_per_s']:7.1f} real tokens/s")
    overhead = results["identical"]["tokens_per_s"] / results["bare"]["tokens_per_s"]
    print(f"identical settings, Studio / bare TRL DPOTrainer: {overhead:.2f}x (target >= 0.95)")
    return 0 if overhead >= 0.95 else 1


if __name__ == "__main__":
    sys.exit(main())
