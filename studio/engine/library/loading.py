"""Loading a base model once and putting trained adapters on top of it, for the quality check and playground.

One base model in memory serves the base answer (adapters disabled) and every tuned version (each adapter
by name), which halves memory compared with loading a merged copy per run. torch and transformers are
imported here, lazily, never at GUI start-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.engine.runs.registry import RunRecord


@dataclass
class LoadedBase:
    """A base model with zero or more named adapters, and its tokenizer."""

    model_path: Path
    model: Any
    tokenizer: Any
    adapters: dict[str, Path] = field(default_factory=dict)


def adapter_dir_of(run: RunRecord) -> Path:
    """The run's final adapter, or the last verified checkpoint of a run stopped before the end."""
    from studio.engine.training.final_adapter import usable_adapter

    return usable_adapter(run.run_dir, f"{run.name} {run.version}").path


def load_base(base_model: str) -> LoadedBase:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.engine.models.resolve import resolve_model

    path = resolve_model(base_model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32, use_safetensors=True)
    model.eval()  # type: ignore[no-untyped-call]  # torch's Module.eval is untyped here
    return LoadedBase(path, model, tokenizer)


def attach_adapter(loaded: LoadedBase, name: str, adapter_dir: Path) -> None:
    """Add a trained adapter under `name` (once); the model becomes a PeftModel on the first one."""
    if name in loaded.adapters:
        return
    from peft import PeftModel

    if not loaded.adapters:
        loaded.model = PeftModel.from_pretrained(loaded.model, adapter_dir, adapter_name=name)
    else:
        loaded.model.load_adapter(adapter_dir, adapter_name=name)
    loaded.model.eval()
    loaded.adapters[name] = adapter_dir


def use(loaded: LoadedBase, name: str | None) -> Any:
    """A context in which the model answers as `name`'s tuned version, or as the plain base model (None)."""
    import contextlib

    if name is None:
        return loaded.model.disable_adapter() if loaded.adapters else contextlib.nullcontext()
    loaded.model.set_adapter(name)
    return contextlib.nullcontext()
