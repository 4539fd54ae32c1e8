"""Training throughput: Studio's engine (through the real worker) vs a bare TRL SFTTrainer script.

Same model (the built-in SmolLM2-135M), same data (synthetic chats of 15 to 240 words), same LoRA and
batch settings, on this CPU. Three runs, each in a fresh process, each counting real (non-pad) tokens per
second over the steps after a warm-up step:
  bare      TRL SFTTrainer with its defaults (random order, pad to longest)
  identical Studio with the bare script's settings (random order)   -> ratio must be >= 0.95
  studio    Studio with its own defaults (length grouping on a CPU) -> ratio must be >= 1.5

Usage: python bench/train_throughput.py [--steps 9] [--batch 4] [--max-length 256] [--objective dpo]

--objective dpo is the preference-tuning case: Studio's DPO run against a bare TRL DPOTrainer script on the
same pairs (bench/dpo_throughput.py, which holds that case and can also be run by itself).
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
WORDS = [
    "the",
    "a",
    "model",
    "learns",
    "small",
    "steps",
    "data",
    "answer",
    "question",
    "garden",
    "river",
    "light",
    "window",
    "careful",
    "quick",
]


def make_data(path: Path, rows: int = 400, seed: int = 0) -> Path:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for i in range(rows):
            words = rng.randint(15, 240)
            question = f"Question {i}: " + " ".join(rng.choice(WORDS) for _ in range(max(3, words // 4)))
            answer = " ".join(rng.choice(WORDS) for _ in range(words))
            handle.write(
                json.dumps(
                    {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}
                )
                + "\n"
            )
    return path


def settings(args: argparse.Namespace) -> dict:
    return {
        "max_steps": args.steps,
        "micro_batch_size": args.batch,
        "gradient_accumulation": 1,
        "max_length": args.max_length,
        "learning_rate": 2e-4,
        "lora_r": 16,
        "lora_alpha": 32,
        "lora_dropout": 0.0,
        "warmup_ratio": 0.0,
        "lr_scheduler": "constant",
        "seed": 42,
    }


def rate(points: list[tuple[float, int]]) -> float:
    """Tokens per second between the end of the warm-up step and the last step."""
    (t0, n0), (t1, n1) = points[WARMUP - 1], points[-1]
    return (n1 - n0) / (t1 - t0)


# ---- bare TRL (runs in a child process) ----------------------------------------------------------------


def bare(data: Path, model_dir: str, cfg: dict, out: Path) -> None:
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    points: list[tuple[float, int]] = []
    grad_norms: list[float] = []

    class Clock(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "loss" in logs:
                points.append((time.monotonic(), state.num_input_tokens_seen))
                grad_norms.append(float(logs.get("grad_norm", 0.0)))

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    trainer = SFTTrainer(
        model=model,
        processing_class=tokenizer,
        train_dataset=load_dataset("json", data_files=str(data))["train"],
        peft_config=LoraConfig(
            r=cfg["lora_r"],
            lora_alpha=cfg["lora_alpha"],
            lora_dropout=0.0,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        ),
        args=SFTConfig(
            output_dir=str(out.parent / "bare-out"),
            max_steps=cfg["max_steps"],
            per_device_train_batch_size=cfg["micro_batch_size"],
            gradient_accumulation_steps=1,
            learning_rate=cfg["learning_rate"],
            lr_scheduler_type="constant",
            max_length=cfg["max_length"],
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            seed=cfg["seed"],
            include_num_input_tokens_seen="non_padding",
            bf16=False,  # fp32 like Studio on a CPU (TRL defaults to bf16, which a CPU-only setup refuses)
            disable_tqdm=True,
            dataloader_num_workers=0,
        ),
        callbacks=[Clock()],
    )
    trainer.train()
    out.write_text(json.dumps({"tokens_per_s": rate(points), "grad_norms": grad_norms}))


# ---- Studio (the real worker) --------------------------------------------------------------------------


def run_studio(settings: dict, name: str, root: Path) -> tuple[list[dict], dict]:
    """Train through Studio's real worker, as the app does; its progress events and its final event."""
    from studio.engine.config import TrainConfig
    from studio.engine.runs.folders import create_run_dir
    from studio.engine.training.supervisor import Supervisor

    run_dir = create_run_dir(TrainConfig.from_dict(settings), name, root=root)
    supervisor = Supervisor(run_dir)
    supervisor.start()
    outcome = supervisor.wait()
    if outcome.exit_code != 0:
        raise SystemExit(f"{name} run failed ({outcome.exit_code}); see {run_dir}/logs")
    events = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]
    return [e for e in events if e["event"] == "progress"], events[-1]


def measured(progress: list[dict]) -> dict:
    """Tokens per second after the warm-up, and every step's gradient norm (none may be zero)."""
    return {
        "tokens_per_s": rate([(e["elapsed_s"], e["tokens_seen"]) for e in progress]),
        "grad_norms": [e["grad_norm"] or 0.0 for e in progress],
    }


def studio(data: Path, cfg: dict, group_by_length: bool, root: Path, name: str) -> dict:
    progress, _ = run_studio(
        {
            **cfg,
            "base_model": "builtin",
            "dataset_path": str(data),
            "eval_fraction": 0.0,
            "group_by_length": group_by_length,
            "checkpoint_every_steps": 10_000,
        },
        name,
        root,
    )
    return measured(progress)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=9)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--bare-child", nargs=3, metavar=("DATA", "MODEL", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--objective", choices=["sft", "dpo"], default="sft")
    args = parser.parse_args()
    if args.objective == "dpo":
        import dpo_throughput  # beside this file, so on sys.path when the script runs

        sys.argv = [dpo_throughput.__file__, "--steps", str(args.steps), "--batch", str(args.batch),
                    "--max-length", str(args.max_length)]
        return dpo_throughput.main()
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
        data = make_data(root / "chats.jsonl")
        print(
            f"SmolLM2-135M, LoRA r=16 all-linear, batch {args.batch}, max_length {args.max_length}, fp32, "
            f"{args.steps} steps ({WARMUP} warm-up excluded), {os.cpu_count()} CPU cores",
            flush=True,
        )
        out = root / "bare.json"
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--steps",
                str(args.steps),
                "--batch",
                str(args.batch),
                "--max-length",
                str(args.max_length),
                "--bare-child",
                str(data),
                str(model_dir),
                str(out),
            ],
            check=False,
            stdout=subprocess.DEVNULL,
            stderr=(root / "bare.log").open("w"),
        )
        if not out.exists():
            raise SystemExit("The bare TRL run failed:\n" + (root / "bare.log").read_text()[-3000:])
        results = {"bare": json.loads(out.read_text())}
        results["identical"] = studio(data, cfg, group_by_length=False, root=root / "runs", name="identical")
        results["studio"] = studio(data, cfg, group_by_length=True, root=root / "runs", name="defaults")
    for name, result in results.items():
        print(f"{name:>10}: {result['tokens_per_s']:7.1f} real tokens/s")
        assert all(g > 0 for g in result["grad_norms"]), f"{name}: a gradient norm is zero"
    overhead = results["identical"]["tokens_per_s"] / results["bare"]["tokens_per_s"]
    speedup = results["studio"]["tokens_per_s"] / results["bare"]["tokens_per_s"]
    print(f"identical settings, Studio / bare TRL: {overhead:.2f}x (target >= 0.95)")
    print(f"Studio defaults / bare TRL defaults:   {speedup:.2f}x (target >= 1.5)")
    return 0 if overhead >= 0.95 and speedup >= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
