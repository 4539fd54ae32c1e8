"""Out-of-memory: recognised in one place, memory freed for a retry, and turned into advice when retrying is
not possible (the retry plan is the anomaly module's; the worker carries it out)."""

from __future__ import annotations

from studio.engine.config import TrainConfig
from studio.engine.errors import ExitCode, StudioError


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA and MPS raise torch.OutOfMemoryError; CPU allocators raise MemoryError or a RuntimeError."""
    import torch

    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "can't allocate memory" in text)


def free_memory() -> None:
    """Give back what a failed step held before retrying in the same process (the trainer must be dropped
    first): Python's cycles, then the CUDA allocator's cached blocks."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def out_of_memory_error(config: TrainConfig) -> StudioError:
    actions = []
    if config.micro_batch_size > 1:
        actions.append(
            f"Lower the micro-batch from {config.micro_batch_size} to {max(1, config.micro_batch_size // 2)} and "
            f"raise gradient accumulation to {config.gradient_accumulation * 2} (same effective batch)."
        )
    actions.append(f"Shorten the maximum length (now {config.max_length} tokens).")
    if not config.gradient_checkpointing:
        actions.append("Turn on gradient checkpointing to trade speed for memory.")
    elif config.quantization == "none":
        actions.append("Use QLoRA (4-bit base weights) on an NVIDIA GPU, or pick a smaller model.")
    return StudioError(
        what="Training ran out of memory.",
        why="One training step needed more memory than this machine has free.",
        actions=actions[:3],
        code="out_of_memory",
        exit_code=ExitCode.OUT_OF_MEMORY,
    )
