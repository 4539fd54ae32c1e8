"""Unsloth: patched kernels for faster, leaner LoRA/QLoRA on NVIDIA GPUs.

Imported lazily and only on CUDA (importing unsloth fails on a CPU-only machine). The trainer is the same
TRL SFTTrainer as the HF backend, so events, checkpoints and resume are identical.
Unverified in Studio's CI, which has no GPU: bench/gpu_throughput.py exercises it where a GPU exists.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.engine.config import TrainConfig
from studio.engine.training.backends.base import linear_module_names
from studio.engine.training.backends.hf import PISSA_INIT, initial_adapter

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class UnslothBackend:
    name = "unsloth"

    def load(self, config: TrainConfig, model_path: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        from unsloth import FastLanguageModel

        model, tokenizer = FastLanguageModel.from_pretrained(
            model_name=str(model_path),
            max_seq_length=config.max_length,
            dtype=None,  # Unsloth picks bf16 where supported
            load_in_4bit=config.quantization == "4bit",
            load_in_8bit=config.quantization == "8bit",
            trust_remote_code=config.trust_remote_code,
        )
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return model, tokenizer

    def apply_adapter(self, model: PreTrainedModel, config: TrainConfig) -> Any:
        if config.init_adapter:  # continuing: PEFT loads the earlier adapter onto the patched model
            from peft import PeftModel

            return PeftModel.from_pretrained(model, str(initial_adapter(config)), is_trainable=True)
        from unsloth import FastLanguageModel

        targets = config.target_modules
        if targets == "all-linear":
            targets = linear_module_names(model)
        return FastLanguageModel.get_peft_model(
            model,
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=targets,
            use_rslora=config.method == "rslora",
            use_dora=config.method == "dora",
            init_lora_weights=PISSA_INIT if config.method == "pissa" else True,
            use_gradient_checkpointing="unsloth" if config.gradient_checkpointing else False,
            random_state=config.seed,
        )

    def trainer_config(self, config: TrainConfig) -> TrainConfig:
        # Unsloth handles gradient checkpointing itself; the Trainer must not wrap it a second time.
        return config.updated(gradient_checkpointing=False)
