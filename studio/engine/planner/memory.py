"""Peak training memory, from the model's shapes and the config, without loading anything.

peak = runtime + frozen weights + adapter (weights, gradients, AdamW states) + activations for one
micro-batch of `micro_batch_size x max_length` tokens (less with gradient checkpointing) + the output
head's working set. The CPU figures are calibrated against measured peak RSS of TRL SFTTrainer runs on
the built-in model (bench/memory_estimate.py); GPU figures follow the same model with a CUDA context
instead of the Python runtime.

Preference objectives change what one micro-batch holds: DPO and ORPO run the chosen and the rejected answer
of every pair through the model as one batch (twice the sequences), and DPO and KTO add a forward pass of
the reference (the base with the adapter disabled, without gradients) while the policy's activations are
still alive. Their figures are calibrated the same way against TRL's DPOTrainer, ORPOTrainer and KTOTrainer.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.engine.config import PREFERENCE_OBJECTIVES, TrainConfig
from studio.engine.hardware import HardwareProfile
from studio.engine.models.facts import ModelFacts

MB = 1024 * 1024

# Resident memory of Python + torch + transformers + peft + trl + datasets before the model is loaded,
# measured on the reference CPU machine (about 520 MB after imports, plus the tokenizer and trainer).
CPU_RUNTIME_MB = 600.0
# CUDA context, cuBLAS workspaces and the allocator's reserve on a GPU.
CUDA_RUNTIME_MB = 600.0
# Python process on the host of an Apple GPU (unified memory: host and device share one budget).
MPS_RUNTIME_MB = 900.0

# Bytes per frozen base weight. 4-bit NF4 stores half a byte plus block constants (double-quantized).
WEIGHT_BYTES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0}
NF4_BYTES = 0.53
# LoRA weights kept in fp32: weight + gradient + AdamW first and second moments.
ADAPTER_BYTES = 16.0
# Saved activations per token and layer, in units of the hidden size (h) and MLP width (i): what autograd
# keeps for a Llama-style block with LoRA on every linear layer (norm inputs, q/k/v and the repeated
# GQA keys/values, attention output, gate/up/act, each adapter's dropout copy and mask). Frozen base
# layers keep nothing of their own. Length-independent per token: SDPA on CPU stores no L x L scores.
ACT_PER_H = 14.0
ACT_PER_I = 4.0
# TRL's preference trainers disable dropout in the model (`disable_dropout=True`), the adapters' dropout
# included, so a layer keeps no dropout masks and copies: measured, a preference trainer's layer keeps about
# 80% of what ACT_PER_H and ACT_PER_I count for SFT (DPO with and without checkpointing agree on it).
PREFERENCE_LAYER_SHARE = 0.8
# With checkpointing, one layer's input per token is kept, and one layer is recomputed at a time.
CKPT_PER_H = 2.0
# The output head's working set per token, in units of the vocabulary size, at fp32: TRL's fused head
# scores at most HEAD_CHUNK_TOKENS tokens at a time and keeps logits, probabilities, log-probabilities,
# entropy and accuracy temporaries and their gradient alive together: about nine vocabulary-sized rows
# measured on CPU. On CUDA its Triton kernel scores only the trained positions; three rows is an
# unmeasured allowance there.
HEAD_PER_VOCAB = {"cpu": 9.0, "mps": 9.0, "cuda": 3.0}
HEAD_CHUNK_TOKENS = 32768
# DPO's and KTO's fused head is the same chunked kernel, asked for log-probabilities, entropy, mean logits
# and top-1 hits: about seven vocabulary-sized rows per scored token measured on CPU (DPO with 1,024 and
# 2,048 tokens a pass, fitted together with PREFERENCE_LAYER_SHARE), fewer than SFT's nine. The reference
# pass's head comes and goes before the policy head's backward and stays below it, so it adds none.
# CUDA keeps SFT's unmeasured allowance.
PREFERENCE_HEAD_PER_VOCAB = {"cpu": 7.0, "mps": 7.0, "cuda": 3.0}
# Sequences the policy runs with gradients per example of a micro-batch: DPO and ORPO concatenate each pair's
# chosen and rejected answer into one batch; KTO trains on single answers.
POLICY_SEQUENCES = {"sft": 1, "dpo": 2, "orpo": 2, "kto": 1}
# Sequences per example of one forward pass without gradients: DPO's reference pass over chosen and rejected;
# KTO's passes (the policy on the mismatched KL batch, then the reference on the completions and on the KL
# batch) run one after another, one micro-batch each. SFT and ORPO have no reference.
REFERENCE_SEQUENCES = {"sft": 0, "dpo": 2, "orpo": 0, "kto": 1}
# What a pass without gradients holds per token, in units of h and i, on top of the policy's saved
# activations: the backbone's output and its shifted copy for the fused head, and one layer's working
# tensors (nothing is kept for backward); its head adds none (see PREFERENCE_HEAD_PER_VOCAB). About 45 MB
# per 1,000 tokens on the built-in model: a small allowance, within the measurements' noise.
REF_PER_H = 12.0
REF_PER_I = 3.0
# ORPO (TRL's experimental trainer) has no fused head: it materializes the logits of every token of the
# concatenated batch at fp32, unchunked, with the log-softmax of its cross-entropy and of its log-probabilities
# and their gradients: about five and a half vocabulary-sized rows per token, measured on CPU.
ORPO_HEAD_PER_VOCAB = 5.5
# Allocator slack on top of live tensors (fragmentation, caching allocator rounding).
SLACK = {"cpu": 1.14, "mps": 1.15, "cuda": 1.10}

LINEAR_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# Phi-3 fuses q/k/v into one layer and gate/up into another: "all-linear" adapts these four there.
FUSED_TARGETS = ("qkv_proj", "o_proj", "gate_up_proj", "down_proj")
FUSED_MODEL_TYPES = frozenset({"phi3"})


@dataclass(frozen=True)
class MemoryBreakdown:
    runtime_mb: float
    weights_mb: float
    adapter_mb: float
    activations_mb: float
    head_mb: float
    slack_mb: float
    reference_mb: float = 0.0  # DPO and KTO: the pass without gradients (the adapter disabled)

    @property
    def total_mb(self) -> float:
        return (self.runtime_mb + self.weights_mb + self.adapter_mb + self.activations_mb + self.head_mb
                + self.reference_mb + self.slack_mb)

    def to_dict(self) -> dict[str, float]:
        parts = {
            "runtime": self.runtime_mb, "weights": self.weights_mb, "adapter": self.adapter_mb,
            "activations": self.activations_mb, "output_head": self.head_mb,
            "reference": self.reference_mb, "slack": self.slack_mb,
        }
        return {name: round(value, 1) for name, value in parts.items()}


def adapter_params(model: ModelFacts, config: TrainConfig) -> int:
    """Trainable LoRA parameters: r x (in + out) for every targeted linear layer."""
    h, d, i = model.hidden_size, model.head_dim, model.intermediate_size
    q_out, kv_out = model.n_heads * d, model.n_kv_heads * d
    shapes = {
        "q_proj": (h, q_out), "k_proj": (h, kv_out), "v_proj": (h, kv_out), "o_proj": (q_out, h),
        "gate_proj": (h, i * model.n_experts), "up_proj": (h, i * model.n_experts),
        "down_proj": (i * model.n_experts, h),
        "qkv_proj": (h, q_out + 2 * kv_out), "gate_up_proj": (h, 2 * i * model.n_experts),
    }
    every = FUSED_TARGETS if model.model_type in FUSED_MODEL_TYPES else LINEAR_TARGETS
    targets = every if config.target_modules == "all-linear" else [
        name for name in config.target_modules if name in shapes
    ]
    per_layer = sum(config.lora_r * (shapes[name][0] + shapes[name][1]) for name in targets)
    return per_layer * model.n_layers


def memory_budget_mb(hardware: HardwareProfile) -> float:
    """Memory training may use: free GPU memory on CUDA, otherwise what the operating system has available."""
    gpu = hardware.gpu
    if gpu is not None:
        return 0.95 * gpu.free_mb
    # A fifth of what is free stays free: the desktop, the Studio window and other programs keep growing.
    if hardware.device == "mps":  # macOS lets the GPU wire at most about 70% of unified memory
        return min(0.8 * hardware.ram_available_mb, 0.7 * hardware.ram_total_mb)
    return 0.8 * hardware.ram_available_mb


def peak_memory(config: TrainConfig, hardware: HardwareProfile, model: ModelFacts) -> MemoryBreakdown:
    device = hardware.device
    runtime = {"cuda": CUDA_RUNTIME_MB, "mps": MPS_RUNTIME_MB}.get(device, CPU_RUNTIME_MB)
    body_params = max(0, model.n_params - model.embedding_params)
    if config.quantization == "4bit":
        weights = body_params * NF4_BYTES + model.embedding_params * 2.0
    elif config.quantization == "8bit":
        weights = body_params * 1.06 + model.embedding_params * 2.0
    else:
        weights = model.n_params * WEIGHT_BYTES[config.precision]
    adapter = adapter_params(model, config) * ADAPTER_BYTES

    act_bytes = 4.0 if config.precision == "fp32" else 2.0
    tokens = POLICY_SEQUENCES[config.objective] * config.micro_batch_size * config.max_length
    h, i = model.hidden_size, model.intermediate_size * (2 if model.n_experts > 1 else 1)
    one_layer = ACT_PER_H * h + ACT_PER_I * i
    if config.objective in PREFERENCE_OBJECTIVES:
        one_layer *= PREFERENCE_LAYER_SHARE
    per_token = (CKPT_PER_H * h * model.n_layers + one_layer) if config.gradient_checkpointing else (
        one_layer * model.n_layers
    )
    activations = tokens * per_token * act_bytes
    if config.objective == "orpo":
        head = tokens * model.vocab_size * 4.0 * ORPO_HEAD_PER_VOCAB
    else:
        rows = (PREFERENCE_HEAD_PER_VOCAB if config.objective in PREFERENCE_OBJECTIVES else HEAD_PER_VOCAB)[device]
        head = min(tokens, HEAD_CHUNK_TOKENS) * model.vocab_size * 4.0 * rows
    reference = reference_pass_bytes(config, model, act_bytes)

    live = (weights + adapter + activations + head + reference) / MB
    return MemoryBreakdown(
        runtime_mb=runtime,
        weights_mb=weights / MB,
        adapter_mb=adapter / MB,
        activations_mb=activations / MB,
        head_mb=head / MB,
        slack_mb=live * (SLACK[device] - 1.0),
        reference_mb=reference / MB,
    )


def reference_pass_bytes(config: TrainConfig, model: ModelFacts, act_bytes: float) -> float:
    """The largest pass without gradients (DPO's reference, KTO's reference and KL passes), alive on top of
    the policy's saved activations; its head is smaller than the policy head's backward (see REF_PER_H)."""
    tokens = REFERENCE_SEQUENCES[config.objective] * config.micro_batch_size * config.max_length
    i = model.intermediate_size * (2 if model.n_experts > 1 else 1)
    return tokens * (REF_PER_H * model.hidden_size + REF_PER_I * i) * act_bytes
