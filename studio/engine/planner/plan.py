"""From (hardware, model, profile, dataset statistics) to a training config with a reason for every choice.

The memory search tries the fastest layout first (full precision, large micro-batches, no gradient
checkpointing) and gives up speed only as memory demands: smaller micro-batches with more accumulation
(the effective batch never changes), then gradient checkpointing, then 4-bit weights on CUDA. When
nothing fits, the plan says so and names concrete ways out.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from studio.engine.config import TrainConfig
from studio.engine.hardware import GpuInfo, HardwareProfile
from studio.engine.models.builtin import BUILTIN_FOLDER, BUILTIN_MODEL_ID, BUILTIN_NAME
from studio.engine.models.facts import ModelFacts
from studio.engine.models.resolve import looks_like_hub_id
from studio.engine.planner import rules
from studio.engine.planner.estimate import ASSUMED_EXAMPLES, estimate
from studio.engine.planner.memory import memory_budget_mb, peak_memory
from studio.engine.planner.types import DatasetStats, Plan
from studio.engine.profiles import Profile

USER_SET = "You set this."
CHECKPOINT_INTERVAL_S = 600.0  # a checkpoint about every ten minutes bounds what a crash can cost
EVALS_PER_RUN = 10
TIGHT_MEMORY = 0.85
SLOW_CPU_RUN_S = 3 * 3600.0
# On a CPU, matmuls over 4 x 512 tokens already keep the cores busy: bigger micro-batches only cost memory.
MICRO_BATCH_CAP = {"cpu": 4, "mps": 8, "cuda": 16}

# Well-known instruction-tuned models by size, for the "use a smaller model" advice.
SMALLER_MODELS: list[tuple[str, int]] = [
    ("HuggingFaceTB/SmolLM2-135M-Instruct (built in)", 135_000_000),
    ("HuggingFaceTB/SmolLM2-360M-Instruct", 362_000_000),
    ("Qwen/Qwen2.5-0.5B-Instruct", 494_000_000),
    ("meta-llama/Llama-3.2-1B-Instruct", 1_236_000_000),
    ("Qwen/Qwen2.5-1.5B-Instruct", 1_544_000_000),
    ("meta-llama/Llama-3.2-3B-Instruct", 3_213_000_000),
    ("Qwen/Qwen2.5-7B-Instruct", 7_616_000_000),
    ("meta-llama/Llama-3.1-8B-Instruct", 8_030_000_000),
]


def plan(
    hardware: HardwareProfile,
    model: ModelFacts,
    profile: Profile,
    dataset_stats: DatasetStats | None = None,
    *,
    hourly_price: float | None = None,
    grid_g_per_kwh: float = 400.0,
    overrides: dict[str, Any] | None = None,
) -> Plan:
    fixed = dict(overrides or {})
    chosen: dict[str, Any] = {}
    why: dict[str, str] = {}

    def choose(name: str, value: Any, reason: str) -> Any:
        if name in fixed:
            value, reason = fixed[name], USER_SET
        chosen[name], why[name] = value, reason
        return value

    stats = dataset_stats
    choose("base_model", model_reference(model), f"The model you picked: {model.name}.")
    choose("profile", profile.id, f"Defaults tuned for {profile.name}.")
    lora = profile.lora
    choose("lora_r", lora.r, f"The {profile.name} profile's adapter size: enough capacity for this kind of task.")
    choose("lora_alpha", lora.alpha, f"Scaling of {lora.alpha / lora.r:g}x the rank, as the profile suggests.")
    choose("lora_dropout", lora.dropout, "A little dropout in the adapter reduces memorising.")
    choose("target_modules", lora.target_modules,
           "Adapters on every linear layer learn best for the memory they cost."
           if lora.target_modules == "all-linear" else "The layers the profile targets.")
    choose("precision", *rules.precision(hardware))
    length = choose("max_length", *rules.max_length(model, profile, stats, hardware))
    choose("num_epochs", *rules.epochs(profile, stats))
    fraction = choose("eval_fraction", *rules.eval_fraction(stats))
    pack = choose("packing", *rules.packing(hardware, stats, length))
    choose("padding_free", pack, "Goes with packing: rows carry no padding at all." if pack
           else "Only useful together with packing.")
    choose("group_by_length", not pack,
           "Batching examples of similar length cuts padding (measured 1.68x faster on a CPU)." if not pack
           else "Packing already removes padding, so grouping by length adds nothing.")

    effective, batch_why = rules.effective_batch(stats)
    if "micro_batch_size" in fixed and "gradient_accumulation" in fixed:
        effective = int(fixed["micro_batch_size"]) * int(fixed["gradient_accumulation"])
    choose("learning_rate", *rules.learning_rate(profile, effective))

    draft = TrainConfig.from_dict({**chosen, **fixed}, source="the planner's overrides")
    layout, fits = _fit_memory(draft, hardware, model, effective, fixed)
    micro, accumulation, checkpointing, quantization = layout
    budget_gb = memory_budget_mb(hardware) / 1024
    processes, processes_why = rules.data_parallel(hardware)
    processes = choose("num_processes", processes, processes_why)
    if processes > 1 and not {"micro_batch_size", "gradient_accumulation"} & fixed.keys():
        share = max(1, effective // processes)  # each process's part of one update
        micro = min(micro, share)
        accumulation = max(1, share // micro)
    choose("micro_batch_size", micro, f"The largest batch that fits in about {budget_gb:.1f} GB of memory."
           if fits else "The smallest possible batch, because memory is short.")
    devices = f" x {processes} GPUs" if processes > 1 else ""
    choose("gradient_accumulation", accumulation,
           f"{micro} x {accumulation}{devices} keeps each update at about {effective} examples. {batch_why}")
    choose("gradient_checkpointing", checkpointing,
           "Memory is tight, so activations are recomputed instead of stored (about 30% slower)."
           if checkpointing else "Memory allows storing activations, which is faster.")
    choose("quantization", quantization,
           "The model does not fit in full precision, so its weights are loaded in 4-bit (QLoRA)."
           if quantization == "4bit" else "Full-precision base weights fit, which gives the best quality.")
    choose("method", "qlora" if quantization == "4bit" else "lora",
           "QLoRA: LoRA adapters on a 4-bit base model." if quantization == "4bit"
           else "LoRA: small trainable adapters on a frozen model; fast and light.")

    config = TrainConfig.from_dict({**chosen, **fixed}, source="the planner's overrides")
    timing = estimate(config, hardware, model, stats)
    every = rules.nice_steps(CHECKPOINT_INTERVAL_S / max(timing.seconds_per_step, 1e-6))
    every = min(every, max(1, timing.total_steps // 2))
    eval_every = None
    if fraction > 0:
        # Evaluate at least at every checkpoint, so the best checkpoint can be told apart.
        eval_every = min(rules.nice_steps(timing.total_steps / EVALS_PER_RUN), every)
        eval_every = choose("eval_every_steps", eval_every,
                            f"About {max(EVALS_PER_RUN, timing.total_steps // eval_every)} checks on held-out "
                            "data over the run, at least one per checkpoint.")
        every = max(eval_every, every // eval_every * eval_every)
    else:
        choose("eval_every_steps", None, "No held-out data, so no evaluation.")
    minutes = every * timing.seconds_per_step / 60
    choose("checkpoint_every_steps", every,
           f"About every {max(1, round(minutes))} minutes, so a crash or a pause loses little work"
           + (", aligned with evaluations so the best model can be kept." if eval_every else "."))
    for name in fixed.keys() - chosen.keys():
        why[name] = USER_SET

    config = TrainConfig.from_dict({**chosen, **fixed}, source="the planner's overrides")
    estimates = estimate(config, hardware, model, stats, hourly_price=hourly_price,
                         grid_g_per_kwh=grid_g_per_kwh)
    fits = estimates.fits
    return Plan(
        config=config,
        explanations=why,
        estimates=estimates,
        warnings=_warnings(config, hardware, model, profile, stats, estimates.total_time_s.expected,
                           estimates.peak_memory_mb.expected / max(1.0, estimates.memory_budget_mb)),
        fits=fits,
        alternatives=[] if fits else alternatives(config, hardware, model),
    )


def model_reference(model: ModelFacts) -> str:
    """What goes into the config's base_model: a short id when there is one, else the folder."""
    if model.name == BUILTIN_NAME and model.path and Path(model.path).name == BUILTIN_FOLDER:
        return BUILTIN_MODEL_ID
    if looks_like_hub_id(model.name):
        return model.name
    return model.path or model.name


Layout = tuple[int, int, bool, str]


def smallest_micro_batch(config: TrainConfig) -> int:
    """KTO compares each answer with the others in its micro-batch (its KL term), so TRL refuses a batch of 1."""
    return 2 if config.objective == "kto" else 1


def _fit_memory(draft: TrainConfig, hardware: HardwareProfile, model: ModelFacts, effective: int,
                fixed: dict[str, Any]) -> tuple[Layout, bool]:
    """The fastest (micro-batch, accumulation, checkpointing, quantization) that fits, or the leanest one."""
    budget = memory_budget_mb(hardware)
    cap = MICRO_BATCH_CAP[hardware.device]
    least = smallest_micro_batch(draft)
    sizes = [size for size in (64, 32, 16, 8, 4, 2, 1)
             if least <= size <= max(least, min(effective, cap)) and effective % size == 0] or [least]
    if "micro_batch_size" in fixed:
        sizes = [int(fixed["micro_batch_size"])]
    quantizations = ["none", "4bit"] if hardware.device == "cuda" else ["none"]
    if "quantization" in fixed:
        quantizations = [fixed["quantization"]]
    elif fixed.get("method") == "qlora":
        quantizations = ["4bit"]
    checkpointing_options = [fixed["gradient_checkpointing"]] if "gradient_checkpointing" in fixed else [False, True]

    candidates: list[Layout] = []
    for quantization in quantizations:
        for checkpointing in checkpointing_options:
            # Without checkpointing, only batches that keep the GPU busy are worth it; below that,
            # checkpointing with a larger batch is faster.
            smallest = min(4, effective) if (checkpointing is False and len(checkpointing_options) > 1) else 1
            for size in sizes:
                if size >= smallest or len(sizes) == 1:
                    accumulation = fixed.get("gradient_accumulation", max(1, effective // size))
                    candidates.append((size, int(accumulation), bool(checkpointing), quantization))
    if "gradient_checkpointing" not in fixed:
        candidates += [(least, max(1, effective // least), False, q) for q in quantizations]  # last resort, no ckpt
    best: tuple[float, Layout] | None = None
    for layout in candidates:
        micro, accumulation, checkpointing, quantization = layout
        trial = draft.updated(micro_batch_size=micro, gradient_accumulation=accumulation,
                              gradient_checkpointing=checkpointing, quantization=quantization,
                              method=_method_for(draft.method, quantization))
        need = peak_memory(trial, hardware, model).total_mb
        if need <= budget:
            return layout, True
        if best is None or need < best[0]:
            best = (need, layout)
    assert best is not None  # candidates is never empty
    return best[1], False


def _method_for(method: str, quantization: str) -> str:
    if quantization == "4bit":
        return "qlora"
    return "lora" if method == "qlora" else method


def alternatives(config: TrainConfig, hardware: HardwareProfile, model: ModelFacts) -> list[str]:
    """Concrete ways to make training fit, each with the memory it would need."""
    budget = memory_budget_mb(hardware)
    least = smallest_micro_batch(config)
    lean = config.updated(micro_batch_size=least,
                          gradient_accumulation=max(1, config.micro_batch_size * config.gradient_accumulation // least),
                          gradient_checkpointing=True)
    options: list[str] = []
    for length in (config.max_length // 2, config.max_length // 4, 256, 128):
        if 64 <= length < config.max_length:
            need = peak_memory(lean.updated(max_length=length), hardware, model).total_mb
            if need <= budget:
                options.append(f"Shorten max length to {length} tokens: needs about {need / 1024:.1f} GB "
                               "(longer examples are cut).")
                break
    modest = lean.updated(max_length=min(config.max_length, 512))
    room = peak_memory(modest, hardware, model)
    bytes_per_param = room.weights_mb * 1024 * 1024 / max(1, model.n_params)
    spare_mb = budget - room.runtime_mb - room.activations_mb - room.head_mb - room.adapter_mb - room.reference_mb
    max_params = 0.8 * spare_mb * 1024 * 1024 / max(bytes_per_param, 0.1)
    smaller = [name for name, params in SMALLER_MODELS if params <= max_params and params < 0.8 * model.n_params]
    if smaller:
        options.append(f"Use a smaller model, such as {smaller[-1]}.")
    if hardware.device != "cuda":
        gpu_hw = replace(hardware, cuda_available=True, mps=False, gpus=[
            GpuInfo("any NVIDIA GPU", 10**7, 10**7, (8, 0), "", "", True, None)])
        qlora = lean.updated(method="qlora", quantization="4bit", precision="bf16")
        need = peak_memory(qlora, gpu_hw, model).total_mb
        options.append(f"Train on a machine with an NVIDIA GPU: in 4-bit (QLoRA) this model needs about "
                       f"{need / 1024:.0f} GB of GPU memory.")
    elif config.quantization != "4bit":
        options.append("Load the model in 4-bit (QLoRA) to cut its weight memory by about 70%.")
    options.append(f"Free memory: close other programs (training may use about {budget / 1024:.1f} GB now).")
    return options


def _warnings(config: TrainConfig, hardware: HardwareProfile, model: ModelFacts, profile: Profile,
              stats: DatasetStats | None, total_s: float, memory_share: float) -> list[str]:
    notes: list[str] = []
    if stats is None:
        notes.append(f"No dataset given: time estimates assume {ASSUMED_EXAMPLES} examples of about "
                     f"{int(config.max_length * 0.4)} tokens. Add your data for real figures.")
    else:
        if stats.n_examples < profile.min_examples:
            notes.append(f"Only {stats.n_examples} usable examples: results will be weak for {profile.name}; "
                         f"we suggest at least {profile.recommended_examples}.")
        if stats.p99_tokens > config.max_length:
            notes.append(f"More than 1% of examples are longer than {config.max_length} tokens and will be cut.")
    if memory_share > 1.0:
        notes.append("This training does not fit in this machine's memory; see the alternatives.")
    elif memory_share > TIGHT_MEMORY:
        notes.append("Memory is tight: close other programs before training, or shorten max length.")
    if config.quantization == "4bit":
        notes.append("The model only fits in 4-bit: training needs the bitsandbytes package and runs somewhat "
                     "slower; quality stays close to full LoRA.")
    if hardware.device == "cpu" and total_s > SLOW_CPU_RUN_S:
        notes.append(f"Training on the CPU will take about {total_s / 3600:.0f} hours. A GPU would be far faster; "
                     "a smaller model or fewer examples would be too.")
    if hardware.device == "mps":
        notes.append("Training on Apple GPUs works but is less tested; if it fails, Studio can train on the CPU.")
    if not model.has_chat_template and profile.id != "domain":
        notes.append("The model has no chat template; Studio uses a simple fallback format for conversations.")
    return notes
