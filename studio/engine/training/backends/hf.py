"""transformers + PEFT + TRL: the backend that runs everywhere (CPU, CUDA, MPS).

Methods map onto PEFT's LoraConfig: DoRA is `use_dora`, rsLoRA is `use_rslora`, PiSSA is
`init_lora_weights="pissa_niter_4"` (the fast randomized SVD), QLoRA loads the base in 4-bit through
bitsandbytes (CUDA only; checked before loading). A PiSSA adapter is saved converted to plain LoRA (see
`save_adapter`), so that it applies to the unchanged base model like every other adapter.

torch, transformers, PEFT and TRL are imported inside the functions that use them: the library, export and
the GUI import this module (through setup and the adapter checks), and must not pay seconds for them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.engine.config import TrainConfig
from studio.engine.errors import ExitCode, StudioError
from studio.engine.runs.folders import final_adapter_dir
from studio.engine.tracking import plan_tracking
from studio.engine.training.backends.base import device_type
from studio.engine.training.final_adapter import check_adapter_folder, staged_final_adapter

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, Trainer, TrainerCallback

PISSA_INIT = "pissa_niter_4"
PISSA_START = "studio_pissa_start"  # the attribute a PiSSA model keeps its adapter's starting weights in
TRAINED_ADAPTER = "default"  # PEFT's name for the adapter being trained
REFERENCE_ADAPTER = "ref"  # TRL's name for the frozen copy of the starting adapter (DPO and KTO)


def torch_dtype(config: TrainConfig, device: str) -> Any:
    """Weights are kept in the training precision on GPUs; a CPU trains in fp32 (bf16 autocast gave no gain)."""
    import torch

    if device == "cpu":
        return torch.float32
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[config.precision]


def lora_config(config: TrainConfig) -> Any:
    from peft import LoraConfig

    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=config.target_modules,
        task_type="CAUSAL_LM",
        use_dora=config.method == "dora",
        use_rslora=config.method == "rslora",
        # PEFT's Literal names the fast PiSSA form only as a placeholder ('pissa_niter_[number of iters]').
        init_lora_weights=PISSA_INIT if config.method == "pissa" else True,  # type: ignore[arg-type]
    )


def trainer_arguments(config: TrainConfig, output_dir: Path, has_eval: bool, device: str) -> dict[str, Any]:
    """The Trainer settings every objective shares (batching, schedule, checkpoints, precision, reporting)."""
    # output_dir is RUN_DIR/.staging; trackers write beside it, inside the run. The environment must be set
    # before the Trainer builds its reporting callbacks.
    tracking = plan_tracking(config.report_to, output_dir.parent, output_dir.parent.name)
    tracking.apply()
    evaluating = has_eval and config.eval_every_steps is not None
    return {
        "output_dir": str(output_dir),
        "per_device_train_batch_size": config.micro_batch_size,
        "per_device_eval_batch_size": config.micro_batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation,
        "learning_rate": config.learning_rate,
        "lr_scheduler_type": config.lr_scheduler,
        "warmup_steps": config.warmup_ratio,  # transformers 5: a float below 1 is a ratio of the total steps
        "weight_decay": config.weight_decay,
        "num_train_epochs": config.num_epochs,
        "max_steps": config.max_steps or -1,
        "max_grad_norm": config.max_grad_norm,
        "logging_steps": config.logging_steps,
        "save_strategy": "steps",
        "save_steps": config.checkpoint_every_steps,
        "save_total_limit": None,  # retention is Studio's (best K + latest M), applied when sealing
        "eval_strategy": "steps" if evaluating else "no",
        "eval_steps": config.eval_every_steps if evaluating else None,
        "seed": config.seed,
        "bf16": config.precision == "bf16" and device != "cpu",
        "fp16": config.precision == "fp16" and device == "cuda",
        "gradient_checkpointing": config.gradient_checkpointing,
        "gradient_checkpointing_kwargs": {"use_reentrant": False} if config.gradient_checkpointing else None,
        "max_length": config.max_length,
        "report_to": tracking.report_to,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "log_level": "warning",
        "use_cpu": device == "cpu",  # under `accelerate launch` on CPUs, this is what makes the ranks use gloo
    }


def sft_config(config: TrainConfig, output_dir: Path, has_eval: bool, device: str) -> Any:
    """TrainConfig -> TRL's SFTConfig. Packing and padding-free batching only pay off with varlen attention
    on CUDA (on a CPU packing measured 0.64x), so they are turned on only there."""
    from trl import SFTConfig

    cuda = device == "cuda"
    return SFTConfig(
        **trainer_arguments(config, output_dir, has_eval, device),
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        include_num_input_tokens_seen="non_padding",
        packing=config.packing and cuda,
        padding_free=config.padding_free and cuda,
        assistant_only_loss=False,  # Studio's tokenization already carries the assistant masks
    )


def preference_config(config: TrainConfig, output_dir: Path, has_eval: bool, device: str) -> Any:
    """TrainConfig -> the config of TRL's DPO, ORPO or KTO trainer. Each keeps its own sampling order (KTO's
    must stay sequential: its reference KL term pairs each example with the next one's answer)."""
    common = trainer_arguments(config, output_dir, has_eval, device)
    if config.objective == "dpo":
        from trl import DPOConfig

        return DPOConfig(**common, beta=config.beta, include_num_input_tokens_seen="non_padding")
    if config.objective == "kto":
        from trl import KTOConfig

        return KTOConfig(**common, beta=config.beta)
    from trl.experimental.orpo import ORPOConfig  # TRL ships ORPO as experimental only

    return ORPOConfig(**common, beta=config.beta)


def build_sft_trainer(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    train: Dataset,
    eval_set: Dataset | None,
    config: TrainConfig,
    output_dir: Path,
    callbacks: list[TrainerCallback],
) -> Trainer:
    from trl import SFTTrainer

    return SFTTrainer(
        model=model,
        args=sft_config(config, output_dir, eval_set is not None, device_type()),
        train_dataset=train,
        eval_dataset=eval_set,
        processing_class=tokenizer,
        callbacks=callbacks,
    )


def build_preference_trainer(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    train: Dataset,
    eval_set: Dataset | None,
    config: TrainConfig,
    output_dir: Path,
    callbacks: list[TrainerCallback],
) -> Trainer:
    """TRL's own DPOTrainer, ORPOTrainer or KTOTrainer on the adapted model, which apply the chat template to
    the conversational pairs themselves.

    No reference model is passed: TRL then takes it from the model itself, so there is never a second copy
    of the base in memory. DPO and KTO add a frozen copy of the starting adapter (a few MB) as the reference;
    for a fresh adapter that starts as a no-op, it is removed, and the reference is the base with the adapter
    disabled, the same values at no cost. A run continued from an earlier version (init_adapter) keeps the
    copy, so the reference is that version, the model preference tuning starts from. PiSSA keeps it too: its
    base is altered, and only the base plus its starting adapter is the original model. ORPO needs no
    reference at all.
    """
    args = preference_config(config, output_dir, eval_set is not None, device_type())
    common: dict[str, Any] = {
        "model": model,
        "args": args,
        "train_dataset": train,
        "eval_dataset": eval_set,
        "processing_class": tokenizer,
        "callbacks": callbacks,
    }
    if config.objective == "orpo":
        from trl.experimental.orpo import ORPOTrainer

        return ORPOTrainer(**common)
    from peft import PeftModel
    from trl import DPOTrainer, KTOTrainer

    trainer = (DPOTrainer if config.objective == "dpo" else KTOTrainer)(**common)
    fresh = config.init_adapter is None and config.method != "pissa"
    model = trainer.model
    if fresh and isinstance(model, PeftModel) and REFERENCE_ADAPTER in model.peft_config:
        model.delete_adapter(REFERENCE_ADAPTER)
    return trainer


def build_trainer(
    model: Any,
    tokenizer: PreTrainedTokenizerBase,
    train: Dataset,
    eval_set: Dataset | None,
    config: TrainConfig,
    output_dir: Path,
    callbacks: list[TrainerCallback],
) -> Trainer:
    """The trainer of the run's objective: SFTTrainer, or a preference trainer."""
    build = build_sft_trainer if config.objective == "sft" else build_preference_trainer
    return build(model, tokenizer, train, eval_set, config, output_dir, callbacks)


class HFBackend:
    name = "hf"

    def load(self, config: TrainConfig, model_path: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        device = device_type()
        kwargs: dict[str, Any] = {
            "dtype": torch_dtype(config, device),
            "trust_remote_code": config.trust_remote_code,
            "use_safetensors": True,  # never unpickle a pytorch_model.bin: loading it can run code
        }
        if config.quantization != "none":
            kwargs["quantization_config"] = _bitsandbytes_config(config)
        tokenizer = AutoTokenizer.from_pretrained(model_path, trust_remote_code=config.trust_remote_code)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(model_path, **kwargs)
        if config.quantization != "none":
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(  # type: ignore[no-untyped-call]  # PEFT leaves it untyped
                model, use_gradient_checkpointing=config.gradient_checkpointing
            )
        return model, tokenizer

    def apply_adapter(self, model: PreTrainedModel, config: TrainConfig) -> Any:
        """A fresh adapter, or the one a continued run starts from (trainable, its own shape kept)."""
        if config.init_adapter:
            from peft import PeftModel

            return PeftModel.from_pretrained(model, str(initial_adapter(config)), is_trainable=True)
        return new_adapter(model, config)

    def trainer_config(self, config: TrainConfig) -> TrainConfig:
        return config


def new_adapter(model: PreTrainedModel, config: TrainConfig) -> Any:
    """A fresh adapter of the run's method. PiSSA's start is a randomized SVD of the base weights, subtracted
    from them: it is seeded with the run's seed, so a resumed or retried run gets the very same residual base
    its checkpoints were trained on, and its starting weights are kept for `save_adapter`."""
    import torch
    from peft import get_peft_model

    if config.method != "pissa":
        return get_peft_model(model, lora_config(config))
    with torch.random.fork_rng():  # the global random state stays as the caller's seeding left it
        torch.manual_seed(config.seed)
        peft_model = get_peft_model(model, lora_config(config))
    return keep_pissa_start(peft_model)


def keep_pissa_start(peft_model: Any) -> Any:
    """Keep a freshly initialised PiSSA adapter's weights on the model, for `save_adapter`; returns the model."""
    from peft import get_peft_model_state_dict

    start = {name: tensor.detach().clone() for name, tensor in get_peft_model_state_dict(peft_model).items()}
    setattr(peft_model, PISSA_START, start)
    return peft_model


def save_adapter(model: Any, folder: Path) -> None:
    """Save a trained adapter so that it applies to the unchanged base model.

    A PiSSA adapter on its own only works on the residual base its start was subtracted from; loaded onto the
    real base it would count the start twice. PEFT converts it (`path_initial_model_for_weight_conversion`)
    into a plain LoRA of twice the rank that holds the trained change from the start, which every loader,
    merge and GGUF conversion then takes as it is. Checkpoints stay unconverted: resuming needs the PiSSA form.
    """
    start = getattr(model, PISSA_START, None)
    if start is None:
        model.save_pretrained(folder, **_trained_adapter_only(model))
        return
    from safetensors.torch import save_file

    with tempfile.TemporaryDirectory(prefix="studio-pissa-") as scratch:
        initial = Path(scratch) / "pissa_start"
        initial.mkdir()
        save_file(start, str(initial / "adapter_model.safetensors"))  # PEFT writes its config beside it
        model.save_pretrained(
            folder, path_initial_model_for_weight_conversion=str(initial), **_trained_adapter_only(model)
        )


def save_final_adapter(model: Any, tokenizer: PreTrainedTokenizerBase, run_dir: Path) -> Path:
    """Save the trained adapter and its tokenizer as the run's final adapter (staged with a manifest, then
    renamed into place); returns its folder."""
    with staged_final_adapter(run_dir) as staging:
        save_adapter(model, staging)  # a PiSSA adapter is converted to apply to the plain base
        tokenizer.save_pretrained(staging)
    return final_adapter_dir(run_dir)


def _trained_adapter_only(model: Any) -> dict[str, Any]:
    """What makes save_pretrained leave out TRL's frozen reference copy, when a DPO or KTO run has one."""
    if REFERENCE_ADAPTER in getattr(model, "peft_config", {}):
        return {"selected_adapters": [TRAINED_ADAPTER]}
    return {}


def initial_adapter(config: TrainConfig) -> Path:
    """The adapter folder a continued run starts from, checked before the base model's work is spent on it."""
    assert config.init_adapter is not None
    folder = Path(config.init_adapter).expanduser()
    if not (folder / "adapter_config.json").is_file():
        raise StudioError(
            what="The adapter this run should continue from cannot be found.",
            why=f"{folder} has no adapter_config.json (was the earlier run deleted or not finished?).",
            actions=[
                "Continue from a completed run in the library.",
                "Remove `init_adapter` from the configuration to start a fresh adapter.",
            ],
            code="init_adapter_missing",
            exit_code=ExitCode.MODEL_NOT_FOUND,
        )
    check_adapter_folder(folder)
    return folder


def _bitsandbytes_config(config: TrainConfig) -> Any:
    import torch
    from transformers import BitsAndBytesConfig

    if config.quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)  # type: ignore[no-untyped-call]  # untyped in transformers
    return BitsAndBytesConfig(  # type: ignore[no-untyped-call]
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if config.precision == "bf16" else torch.float16,
    )
