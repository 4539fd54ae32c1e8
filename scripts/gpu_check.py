"""The GPU check: what Studio's CUDA path does on a real NVIDIA GPU, in one run of under 8 minutes.

scripts/gpu_check.sh sets up (the cuda extra) and runs this. It decides what can run here, runs it with a
time limit per step, and ends with a summary that says plainly what ran, what passed and what did not run
and why. The decisions (`plan`) are pure, so they are unit-tested on machines without a GPU
(tests/test_gpu_check.py); on such a machine the check says that it did not run and exits 0.

Steps: the gpu-marked tests; a 30-step Unsloth LoRA run and a 30-step 4-bit QLoRA run on the built-in model
and on a 0.5-1.5B model from a local folder (STUDIO_GPU_CHECK_MODEL; the GPU machine has no internet);
bench/gpu_throughput.py against plain transformers + PEFT (tokens/s, peak VRAM, the ratio and MFU).

Usage: python scripts/gpu_check.py [--out DIR] [--budget-s 480]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 480  # the whole check, set-up excluded: under 8 minutes (the step limits below add up to it)
TRAIN_STEPS = 30
MODEL_ENV = "STUDIO_GPU_CHECK_MODEL"


@dataclass(frozen=True)
class Facts:
    """What the machine offers, read once (`read_facts`) so that `plan` stays a pure decision."""

    cuda: bool
    gpu_name: str | None
    unsloth: bool
    bitsandbytes: bool
    local_model: Path | None  # a 0.5-1.5B model folder, when one was given and exists


@dataclass(frozen=True)
class Step:
    name: str
    command: list[str]
    limit_s: int


@dataclass
class Outcome:
    name: str
    status: str  # "passed", "failed", "timed out" or "not run"
    seconds: float = 0.0
    detail: str = ""
    tail: list[str] = field(default_factory=list)


def read_facts(environ: dict[str, str] | None = None) -> Facts:
    environ = dict(os.environ if environ is None else environ)
    cuda, name = False, None
    if importlib.util.find_spec("torch") is not None:
        import torch

        cuda = bool(torch.cuda.is_available())
        name = torch.cuda.get_device_name(0) if cuda else None
    model = Path(environ[MODEL_ENV]).expanduser() if environ.get(MODEL_ENV) else None
    return Facts(cuda=cuda, gpu_name=name, unsloth=importlib.util.find_spec("unsloth") is not None,
                 bitsandbytes=importlib.util.find_spec("bitsandbytes") is not None,
                 local_model=model if model is not None and (model / "config.json").is_file() else None)


def train_config(model: str, method: str, backend: str, dataset: Path) -> dict[str, object]:
    """A short real run: 30 optimizer steps, bf16, no held-out split, one checkpoint at the end."""
    return {"base_model": model, "dataset_path": str(dataset), "method": method, "backend": backend,
            "max_steps": TRAIN_STEPS, "micro_batch_size": 8, "gradient_accumulation": 1, "max_length": 512,
            "precision": "bf16", "eval_fraction": 0.0, "checkpoint_every_steps": TRAIN_STEPS,
            "learning_rate": 2e-4, "warmup_ratio": 0.0}


def plan(facts: Facts, python: str, configs: Path) -> tuple[list[Step], list[Outcome]]:
    """The steps to run here, and those that cannot, each with the reason. Writes no files: the training
    steps name config files under `configs`, written by `write_configs`."""
    skipped: list[Outcome] = []
    if not facts.cuda:
        return [], [Outcome("everything", "not run", detail="no NVIDIA GPU with CUDA on this machine")]
    steps = [Step("gpu-marked tests", [python, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"], 60)]
    models = [("builtin", "builtin")]
    if facts.local_model is not None:
        models.append((facts.local_model.name, str(facts.local_model)))
    else:
        skipped.append(Outcome("0.5-1.5B model runs", "not run",
                               detail=f"no local model folder in {MODEL_ENV} (the GPU machine has no internet)"))
    for label, _model in models:
        if facts.unsloth:
            steps.append(Step(f"Unsloth LoRA, {TRAIN_STEPS} steps, {label}", _train(python, configs, label, "lora"),
                              75))
        else:
            skipped.append(Outcome(f"Unsloth LoRA, {label}", "not run", detail="unsloth is not installed"))
        if facts.bitsandbytes:
            steps.append(Step(f"4-bit QLoRA, {TRAIN_STEPS} steps, {label}", _train(python, configs, label, "qlora"),
                              75))
        else:
            skipped.append(Outcome(f"4-bit QLoRA, {label}", "not run", detail="bitsandbytes is not installed"))
    steps.append(Step("throughput: Unsloth vs transformers + PEFT",
                      [python, str(ROOT / "bench" / "gpu_throughput.py"), "--steps", "20"], 120))
    return steps, skipped


def _train(python: str, configs: Path, label: str, method: str) -> list[str]:
    return [python, "-m", "studio", "train", "--config", str(configs / f"{label}-{method}.json"),
            "--name", f"gpu-check-{method}", "--parallel"]


def write_configs(facts: Facts, configs: Path, dataset: Path) -> None:
    models = [("builtin", "builtin")] + ([(facts.local_model.name, str(facts.local_model))]
                                         if facts.local_model is not None else [])
    for label, model in models:
        for method, backend in (("lora", "unsloth" if facts.unsloth else "hf"), ("qlora", "auto")):
            path = configs / f"{label}-{method}.json"
            path.write_text(json.dumps(train_config(model, method, backend, dataset)), encoding="utf-8")


def run_steps(steps: list[Step], budget_s: float) -> list[Outcome]:
    """Run each step within its own limit and the budget left; a step that cannot start in time is not run."""
    started = time.monotonic()
    outcomes = []
    for step in steps:
        left = budget_s - (time.monotonic() - started)
        if left < 10:
            outcomes.append(Outcome(step.name, "not run", detail="the check's time budget was spent"))
            continue
        began = time.monotonic()
        try:
            done = subprocess.run(step.command, cwd=ROOT, capture_output=True, text=True,
                                  timeout=min(step.limit_s, left))
            status = "passed" if done.returncode == 0 else "failed"
            lines = (done.stdout + done.stderr).strip().splitlines()
            detail = "" if done.returncode == 0 else f"exit code {done.returncode}"
        except subprocess.TimeoutExpired as expired:
            status, detail = "timed out", f"after {min(step.limit_s, left):.0f} s"
            lines = str(expired.stdout or "").splitlines()
        outcomes.append(Outcome(step.name, status, time.monotonic() - began, detail, lines[-15:]))
    return outcomes


def summary(facts: Facts, outcomes: list[Outcome]) -> str:
    where = facts.gpu_name or "no GPU"
    lines = [f"GPU check on {where}:"]
    lines += [f"  {o.status:>9}  {o.name}" + (f" ({o.detail})" if o.detail else "")
              + (f", {o.seconds:.0f} s" if o.seconds else "") for o in outcomes]
    if not facts.cuda:
        lines.append("The GPU check did not run: nothing here was verified on a GPU.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".")))
    parser.add_argument("--budget-s", type=float, default=BUDGET_S)
    args = parser.parse_args(argv)
    facts = read_facts()
    with tempfile.TemporaryDirectory(prefix="studio-gpu-check-") as scratch:
        configs = Path(scratch)
        os.environ.setdefault("STUDIO_HOME", str(configs / "home"))
        steps, skipped = plan(facts, sys.executable, configs)
        if steps:
            sys.path.insert(0, str(ROOT / "bench"))
            from train_throughput import make_data

            write_configs(facts, configs, make_data(configs / "chats.jsonl", rows=600))
        outcomes = run_steps(steps, args.budget_s) + skipped
        for outcome in outcomes:
            if outcome.tail and outcome.status != "not run":
                print(f"--- {outcome.name}\n" + "\n".join(outcome.tail))
    text = summary(facts, outcomes)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu-check.json").write_text(json.dumps(
        {"gpu": facts.gpu_name, "cuda": facts.cuda, "outcomes": [asdict(o) for o in outcomes]}, indent=2),
        encoding="utf-8")
    return 1 if any(o.status in ("failed", "timed out") for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
