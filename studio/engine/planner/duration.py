"""How long training takes: FLOPs per token over the device's usable speed.

LoRA training costs about 4N FLOPs per token (forward 2N, backward through the frozen weights 2N, no
weight gradients), 6N with gradient checkpointing (one extra forward), plus the attention term. The
usable share of the device's peak speed is calibrated: on the reference 2-core CPU, SmolLM2-135M with
r=16, batch 8, length 512 trained 174 real tokens/s with length grouping and 104 without (NOTES.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from studio.engine.config import TrainConfig
from studio.engine.hardware import HardwareProfile
from studio.engine.models.facts import ModelFacts
from studio.engine.planner.devices import peak_gflops
from studio.engine.planner.types import DatasetStats

# Share of peak matmul speed that LoRA training sustains.
EFFICIENCY = {"cpu": 0.85, "mps": 0.35, "cuda": 0.30}
QUANTIZED_SLOWDOWN = 0.85  # 4-bit weights are dequantized on the fly
# Padded tokens per real token: batches of similar lengths pad little, random batches pad a lot.
PADDING_GROUPED = 1.10
PADDING_RANDOM_GUESS = 1.85
# Without a dataset, assume examples average this share of max_length.
ASSUMED_FILL = 0.4
MODEL_LOAD_S = 10.0
LOAD_MB_PER_S = 400.0


@dataclass(frozen=True)
class Throughput:
    real_tokens_per_s: float
    seconds_per_step: float
    known_device: bool


def mean_tokens(config: TrainConfig, stats: DatasetStats | None) -> float:
    """Average real tokens per example after truncation to max_length."""
    if stats is None:
        return config.max_length * ASSUMED_FILL
    return min(stats.mean_tokens, float(config.max_length))


def padding_factor(config: TrainConfig, stats: DatasetStats | None) -> float:
    if config.packing or config.micro_batch_size == 1:
        return 1.0
    if config.group_by_length:
        return PADDING_GROUPED
    if stats is None:
        return PADDING_RANDOM_GUESS
    # A random batch pads to its longest member, roughly the p90 for batches of four or more.
    longest = min(config.max_length, stats.p90_tokens if config.micro_batch_size >= 4 else
                  (stats.p50_tokens + stats.p90_tokens) / 2)
    return max(1.0, longest / max(1.0, mean_tokens(config, stats)))


def flops_per_token(config: TrainConfig, model: ModelFacts, seq_len: float) -> float:
    untied_input = 0 if model.tie_word_embeddings else model.vocab_size * model.hidden_size
    matmul_params = model.n_params - untied_input
    passes = 6.0 if config.gradient_checkpointing else 4.0
    attention = 12.0 * seq_len * model.n_heads * model.head_dim * model.n_layers
    return passes * matmul_params + attention


def throughput(config: TrainConfig, hardware: HardwareProfile, model: ModelFacts,
               stats: DatasetStats | None) -> Throughput:
    gflops, known = peak_gflops(hardware, config.precision)
    usable = gflops * 1e9 * EFFICIENCY[hardware.device]
    if config.quantization != "none":
        usable *= QUANTIZED_SLOWDOWN
    pad = padding_factor(config, stats)
    seq_len = config.max_length if config.packing else mean_tokens(config, stats) * pad
    real_tps = usable / flops_per_token(config, model, seq_len) / pad
    # Each data-parallel process works through its own share at the same time, so a step takes as long as
    # one device's micro-batches.
    tokens_per_step = config.micro_batch_size * config.gradient_accumulation * mean_tokens(config, stats)
    return Throughput(real_tps, tokens_per_step / real_tps, known)


def steps_per_epoch(config: TrainConfig, n_examples: int) -> int:
    train = max(1, round(n_examples * (1.0 - config.eval_fraction)))
    return max(1, math.ceil(train / config.effective_batch_size))


def startup_s(model: ModelFacts) -> float:
    return MODEL_LOAD_S + model.size_on_disk_mb / LOAD_MB_PER_S
