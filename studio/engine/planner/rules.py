"""The planner's individual rules: each returns a value and the plain-language reason for it."""

from __future__ import annotations

import math

from studio.engine.hardware import HardwareProfile
from studio.engine.models.facts import ModelFacts
from studio.engine.planner.types import DatasetStats
from studio.engine.profiles import Profile

Choice = tuple[object, str]

REFERENCE_BATCH = 16  # the profiles' learning rates are tuned for this effective batch
SMALL_DATASET = 200
CPU_DEFAULT_MAX_LENGTH = 512


def precision(hardware: HardwareProfile) -> Choice:
    gpu = hardware.gpu
    if gpu is not None:
        if gpu.bf16:
            return "bf16", f"The {gpu.name} supports bf16: half the memory of fp32 and stable training."
        return "fp16", (f"The {gpu.name} has no bf16 support, so fp16 (with loss scaling) halves memory "
                        "instead.")
    if hardware.device == "mps":
        return "fp32", "Mixed precision on Apple GPUs is not reliable for training in PyTorch yet, so fp32 is safer."
    return "fp32", "On a CPU, fp32 is the fastest format (bf16 measured 8% slower on CPUs like this one)."


def max_length(model: ModelFacts, profile: Profile, stats: DatasetStats | None,
               hardware: HardwareProfile) -> Choice:
    cap = min(model.context_length, profile.max_length_hint)
    if stats is not None:
        wanted = max(64, math.ceil(stats.p99_tokens / 64) * 64)
        if wanted <= cap:
            return wanted, (f"99% of your examples are at most {stats.p99_tokens} tokens long; {wanted} keeps "
                            "them whole without wasting memory on padding.")
        limit = "the model's context" if model.context_length <= profile.max_length_hint else (
            f"the {profile.name} profile's limit")
        return cap, (f"Your longest examples ({stats.p99_tokens} tokens at the 99th percentile) exceed {limit}, "
                     f"so they are cut at {cap} tokens.")
    if hardware.device != "cuda" and cap > CPU_DEFAULT_MAX_LENGTH:
        return CPU_DEFAULT_MAX_LENGTH, (f"No dataset given yet; {CPU_DEFAULT_MAX_LENGTH} tokens keeps steps short "
                                        "without a GPU. Add your data and Studio fits it to your examples.")
    return cap, f"No dataset given yet; {cap} tokens is the {profile.name} profile's usual length."


def epochs(profile: Profile, stats: DatasetStats | None) -> Choice:
    base = profile.epochs
    if stats is None:
        return base, f"The {profile.name} profile's usual number of passes over the data."
    n = stats.n_examples
    if n < SMALL_DATASET:
        value = min(5.0, max(base, base * 1.5))
        return value, f"With only {n} examples, a few more passes ({value:g}) help the model pick up the pattern."
    if n > 20000:
        return 1.0, f"With {n:,} examples, one pass is plenty and avoids memorising them."
    if n > 5000:
        value = min(base, 2.0)
        return value, f"With {n:,} examples, {value:g} passes are enough; more would mostly memorise."
    return base, f"{base:g} passes suit a dataset of {n:,} examples for the {profile.name} profile."


def eval_fraction(stats: DatasetStats | None) -> Choice:
    if stats is None:
        return 0.1, "One example in ten is held out to check that the model learns rather than memorises."
    n = stats.n_examples
    if n < 50:
        return 0.0, f"With only {n} examples, every one is needed for training; no held-out check."
    if n > 5000:
        value = round(max(0.01, 500 / n), 3)
        return value, f"About 500 held-out examples are enough to check progress reliably ({value:.1%})."
    return 0.1, "One example in ten is held out to check that the model learns rather than memorises."


def effective_batch(stats: DatasetStats | None) -> tuple[int, str]:
    if stats is not None and stats.n_examples < SMALL_DATASET:
        return 8, f"With {stats.n_examples} examples, updates of 8 examples give the model enough steps to learn."
    return REFERENCE_BATCH, "Updates over 16 examples give smooth, stable learning for LoRA."


def data_parallel(hardware: HardwareProfile) -> tuple[int, str]:
    """One training process per CUDA GPU (Accelerate, data parallel); everything else trains in one process."""
    gpus = len(hardware.gpus) if hardware.device == "cuda" else 0
    if gpus > 1:
        return gpus, (f"This machine has {gpus} GPUs: each trains on its share of every update at the same time "
                      "(data parallel, started with `accelerate launch`).")
    return 1, "One device, one training process."


def learning_rate(profile: Profile, effective: int) -> Choice:
    """Square-root scaling with the effective batch, which suits Adam-type optimisers."""
    value = profile.learning_rate * math.sqrt(effective / REFERENCE_BATCH)
    value = float(f"{value:.2g}")
    if effective == REFERENCE_BATCH:
        return value, f"The {profile.name} profile's rate for updates of {REFERENCE_BATCH} examples."
    return value, (f"The {profile.name} profile's rate ({profile.learning_rate:g}), scaled to updates of "
                   f"{effective} examples.")


def packing(hardware: HardwareProfile, stats: DatasetStats | None, length: int) -> Choice:
    if hardware.device != "cuda":
        return False, ("Packing examples together is slower without a GPU's variable-length attention "
                       "(measured 0.64x on a CPU); length grouping is used instead.")
    if stats is not None and stats.p50_tokens * 2 <= length:
        return True, "Most examples are short, so packing several into one row avoids computing on padding."
    return False, "Examples are long enough that packing would gain little."


def nice_steps(value: float) -> int:
    """Round a step count to a number people like to read (1, 2, 5, 10, 20, 25, 50, 100, ...)."""
    if value <= 1:
        return 1
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude * 1.25:
            return max(1, int(step * magnitude))
    return int(10 * magnitude)
