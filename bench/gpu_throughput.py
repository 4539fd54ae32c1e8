"""GPU training throughput: Unsloth vs plain transformers + PEFT, tokens/s and peak VRAM, on CUDA.

MFU is model FLOPs (the planner's count) per second over the GPU's peak bf16 speed. Both run
through Studio's real worker on the same model, data and settings (the Unsloth backend is chosen
with backend="unsloth", the plain one with backend="hf"). Exits with a clear message when there is no
NVIDIA GPU, and skips Unsloth (saying so) when it is not installed.

Usage: python bench/gpu_throughput.py [--model builtin] [--steps 20] [--batch 8] [--max-length 1024] [--method lora]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

from train_throughput import make_data, measured, run_studio


def run(backend: str, args: argparse.Namespace, data: Path, root: Path) -> dict:
    progress, completed = run_studio({
        "base_model": args.model, "dataset_path": str(data), "backend": backend, "method": args.method,
        "max_steps": args.steps, "micro_batch_size": args.batch, "gradient_accumulation": 1,
        "max_length": args.max_length, "precision": "bf16", "eval_fraction": 0.0, "lora_r": 16, "lora_alpha": 32,
        "lora_dropout": 0.0, "learning_rate": 2e-4, "warmup_ratio": 0.0, "lr_scheduler": "constant",
        "checkpoint_every_steps": 100_000,
    }, backend, root)
    return {**measured(progress), "peak_vram_gb": (completed["metrics"].get("peak_gpu") or 0) / 2**30}


def model_flops(args: argparse.Namespace) -> tuple[float, float]:
    """Training FLOPs per real token (the planner's count: 4N for LoRA, attention at the mean length) and this
    GPU's peak bf16 FLOP/s, for MFU; (0, 0) when the GPU's peak is not in Studio's table."""
    from studio.engine.config import TrainConfig
    from studio.engine.hardware import probe
    from studio.engine.models.facts import read_model_facts
    from studio.engine.planner.devices import peak_gflops
    from studio.engine.planner.duration import flops_per_token, mean_tokens

    config = TrainConfig(max_length=args.max_length, precision="bf16")
    facts = read_model_facts(args.model)
    gflops, known = peak_gflops(probe(), "bf16")
    return flops_per_token(config, facts, mean_tokens(config, None)), gflops * 1e9 if known else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="builtin")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--method", default="lora", choices=["lora", "qlora", "dora", "rslora", "pissa"])
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print("No NVIDIA GPU with CUDA here: this benchmark needs one (CPU figures: bench/train_throughput.py).")
        return 0
    backends = ["hf"]
    if importlib.util.find_spec("unsloth") is not None:
        backends.insert(0, "unsloth")
    else:
        print("Unsloth is not installed (pip install 'studio[cuda]'): measuring transformers + PEFT only.")
    with tempfile.TemporaryDirectory(prefix="studio-gpu-bench-") as tmp:
        root = Path(tmp)
        os.environ.setdefault("STUDIO_HOME", str(root / "home"))
        data = make_data(root / "chats.jsonl", rows=2000)
        print(f"{torch.cuda.get_device_name(0)}, model {args.model}, {args.method}, batch {args.batch}, "
              f"max_length {args.max_length}, bf16, {args.steps} steps")
        results = {backend: run(backend, args, data, root / "runs") for backend in backends}
    flops, peak = model_flops(args)
    for backend, result in results.items():
        mfu = result["tokens_per_s"] * flops / peak if peak else 0.0
        print(f"{backend:>8}: {result['tokens_per_s']:9.0f} tokens/s, peak VRAM {result['peak_vram_gb']:.2f} GB, "
              f"MFU {mfu:.1%}")
        assert all(g > 0 for g in result["grad_norms"]), f"{backend}: a gradient norm is zero"
    if len(results) == 2:
        print(f"Unsloth / HF+PEFT: {results['unsloth']['tokens_per_s'] / results['hf']['tokens_per_s']:.2f}x "
              f"tokens/s, {results['unsloth']['peak_vram_gb'] / max(results['hf']['peak_vram_gb'], 1e-9):.2f}x VRAM")
    return 0


if __name__ == "__main__":
    sys.exit(main())
