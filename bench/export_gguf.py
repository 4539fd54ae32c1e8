"""Benchmark: export the built-in 135M model with a LoRA adapter to a verified Q4_K_M GGUF, against the
baseline of saving the merged Hugging Face model, in the same run.

Both start from the same run folder (base model + PEFT adapter) and include loading and merging.
The GGUF side adds: save the merged model for the converter, llama.cpp's converter (f16), the
quantizer (Q4_K_M) and verification against the merged model. Each stage is timed from the progress
messages. Without --run, a run with a random-weight adapter on the built-in model is made in a temp dir.
--format gguf-adapter times the adapter GGUF instead (base model to f16 GGUF, adapter conversion,
verification on the base GGUF with the adapter applied); --quant does not apply to it.

    .venv/bin/python bench/export_gguf.py [--run RUN] [--quant Q4_K_M] [--format gguf|gguf-adapter]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from studio.engine.export.pipeline import ExportResult, export_run
from studio.engine.progress import Callbacks

Stages = list[tuple[str, float]]


def make_run(root: Path) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from studio.engine.config import TrainConfig
    from studio.engine.models.builtin import BUILTIN_MODEL_ID, ensure_builtin

    run_dir = root / "bench-run"
    TrainConfig(base_model=BUILTIN_MODEL_ID, lora_r=16, lora_alpha=32).save(run_dir / "config.json")
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(ensure_builtin())
    peft_model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear",
                                                  init_lora_weights=False))
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.mul_(0.02)
    peft_model.save_pretrained(run_dir / "final" / "adapter")
    return run_dir


def timed_export(run_dir: Path, fmt: str, out: Path, quant: str | None) -> tuple[float, Stages, ExportResult]:
    stages: list[tuple[str, float]] = []
    start = time.perf_counter()

    def progress(message: str, _fraction: float) -> None:
        stage = message.split(" (")[0].split(" on prompt")[0]
        if not stages or stages[-1][0] != stage:
            stages.append((stage, time.perf_counter() - start))

    result = export_run(run_dir, fmt, quant=quant, out_dir=out, task=Callbacks(progress))  # type: ignore[arg-type]
    return time.perf_counter() - start, stages, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="an existing run folder (default: make one)")
    parser.add_argument("--quant", default="Q4_K_M")
    parser.add_argument("--format", default="gguf", choices=("gguf", "gguf-adapter"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="studio-bench-export-") as tmp:
        root = Path(tmp)
        run_dir = args.run or make_run(root)
        hf_s, _, _ = timed_export(run_dir, "hf", root / "hf", None)
        adapter = args.format == "gguf-adapter"
        label = "f16 adapter GGUF" if adapter else f"{args.quant} GGUF"
        gguf_s, stages, result = timed_export(run_dir, args.format, root / "gguf", None if adapter else args.quant)
        report = result.verification
        assert report is not None
        size_hf = sum(p.stat().st_size for p in (root / "hf").iterdir()) / 2**20
        size_gguf = sum(p.stat().st_size for p in (root / "gguf").glob("*.gguf")) / 2**20
        print(f"merged HF model saved (baseline): {hf_s:6.1f} s  ({size_hf:.0f} MiB)")
        print(f"{label} exported and verified:  {gguf_s:6.1f} s  ({size_gguf:.0f} MiB)")
        print(f"ratio GGUF+verify / HF save: {gguf_s / hf_s:.2f}x")
        print("GGUF stages (start times):")
        for (stage, at), (_, next_at) in zip(stages, [*stages[1:], ("end", gguf_s)], strict=True):
            print(f"  {at:6.1f} s  {next_at - at:6.1f} s  {stage}")
        print(f"verification: agreement {report.agreement:.1%} over {report.positions} positions, "
              f"{'passed' if report.passed else 'FAILED'}; {report.recommendation}")
        if report.adapter_effect is not None:
            print(f"adapter effect: scores moved {report.adapter_effect:.2f} on average, top pick changed at "
                  f"{report.adapter_changed or 0:.1%} of positions")
        shutil.rmtree(root / "hf", ignore_errors=True)


if __name__ == "__main__":
    main()
