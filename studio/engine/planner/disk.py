"""Disk space a run needs, from the model's shapes and the config, without loading anything.

needed = (checkpoints on disk at once) x (adapter + AdamW state + tokenizer + small files) + the final adapter
(+ tokenizer) + an allowance for events and logs, less what the run's checkpoints already take (a resumed run
reuses their places). Adapters are counted at fp32 and every checkpoint slot as full, so this is an upper bound.
"""

from __future__ import annotations

import math

from studio.engine.config import TrainConfig
from studio.engine.models.facts import ModelFacts
from studio.engine.planner.memory import adapter_params

# LoRA weights as saved (fp32 upper bound), and AdamW's two fp32 moments per weight in optimizer.pt.
ADAPTER_FILE_BYTES = 4
OPTIMIZER_FILE_BYTES = 8
# Scheduler, RNG states, trainer state, adapter config and the manifest of one checkpoint.
CHECKPOINT_SMALL_FILES = 1024 * 1024
# events.jsonl, logs and a registry update over a run.
RECORD_ALLOWANCE = 20 * 1024 * 1024
SAFETY = 1.1


def checkpoint_bytes(config: TrainConfig, model: ModelFacts, tokenizer_bytes: int = 0) -> int:
    """The size of one checkpoint: adapter, optimizer state, the tokenizer's files and the small files."""
    params = adapter_params(model, config)
    return params * (ADAPTER_FILE_BYTES + OPTIMIZER_FILE_BYTES) + tokenizer_bytes + CHECKPOINT_SMALL_FILES


def checkpoints_at_once(config: TrainConfig) -> int:
    """Checkpoints on disk at the worst moment: those retention keeps, plus the new one written before the
    oldest is removed; never more than the run will save (its schedule, plus one at a stop)."""
    kept = config.keep_last_checkpoints + config.keep_best_checkpoints + 1
    if config.max_steps is None:
        return kept
    return min(kept, math.ceil(config.max_steps / config.checkpoint_every_steps) + 1)


def disk_needed_bytes(
    config: TrainConfig, model: ModelFacts, tokenizer_bytes: int = 0, written_bytes: int = 0
) -> int:
    """Bytes the run still needs on the disk of its folder; `written_bytes` is what its checkpoints take now."""
    final_adapter = adapter_params(model, config) * ADAPTER_FILE_BYTES + tokenizer_bytes
    total = checkpoints_at_once(config) * checkpoint_bytes(config, model, tokenizer_bytes) + final_adapter
    return max(0, math.ceil(total * SAFETY) + RECORD_ALLOWANCE - written_bytes)
