"""The interface every training backend implements: load, adapt, and tune the shared trainer's settings.

Backends differ in how they load and patch the model (Unsloth rewrites kernels); the training loop itself
is always TRL's (SFTTrainer, or DPOTrainer, ORPOTrainer or KTOTrainer for preference tuning: see
hf.build_trainer), so events, checkpoints and resume behave the same whatever the backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from studio.engine.config import TrainConfig
from studio.engine.errors import StudioError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


class TrainingBackend(Protocol):
    name: str

    def load(self, config: TrainConfig, model_path: Path) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        """The base model (quantized if asked) and its tokenizer."""
        ...

    def apply_adapter(self, model: PreTrainedModel, config: TrainConfig) -> Any:
        """The model wrapped with a trainable LoRA-family adapter."""
        ...

    def trainer_config(self, config: TrainConfig) -> TrainConfig:
        """The settings the shared trainer (hf.build_trainer) runs with on this backend."""
        ...


def device_type() -> str:
    """cuda, mps or cpu: the accelerator the Trainer will pick."""
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def check_method_supported(config: TrainConfig, device: str) -> None:
    """QLoRA and fp16 need an NVIDIA GPU; say so before loading anything."""
    if (config.method == "qlora" or config.quantization != "none") and device != "cuda":
        raise StudioError(
            what="QLoRA (4-bit or 8-bit base weights) needs an NVIDIA GPU, and this machine has none.",
            why="The bitsandbytes library that compresses the weights only runs on CUDA.",
            actions=[
                "Train with plain LoRA instead: set method to 'lora' and quantization to 'none' in the "
                "settings (or let `studio plan` choose for this machine).",
                "Or run this training on a machine with an NVIDIA GPU.",
            ],
            code="qlora_needs_cuda",
        )
    if config.precision == "fp16" and device == "cpu":
        raise StudioError(
            what="Half precision (fp16) training is not available on a CPU.",
            why="CPUs have no fast fp16 arithmetic; PyTorch refuses fp16 mixed precision there.",
            actions=[
                "Set precision to 'fp32' (the CPU default) or 'bf16'.",
                "Let Studio choose: `studio plan`.",
            ],
            code="fp16_needs_gpu",
        )


def linear_module_names(model: Any) -> list[str]:
    """What "all-linear" means for this model: the names of its linear layers, the output head excluded.

    Backends that need explicit names (Unsloth) get the model's own, so families with other layer names
    (Phi-3's fused qkv_proj and gate_up_proj) are adapted fully instead of failing or half-adapted.
    """
    import torch

    head = model.get_output_embeddings()
    return sorted({name.rsplit(".", 1)[-1] for name, module in model.named_modules()
                   if isinstance(module, torch.nn.Linear) and module is not head and name})
