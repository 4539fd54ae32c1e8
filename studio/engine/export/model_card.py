"""The model card (README.md) shipped with every export, written from the run's own record.

People who receive a model need to know what it was trained from, how, on how much data, how well it
did and where it should not be trusted; the Hub also reads the YAML header at the top.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from studio.engine.errors import StudioError
from studio.engine.export.run_info import RunInfo
from studio.engine.profiles import Profile, get_profile

_HYPERPARAMETERS = (
    "method", "lora_r", "lora_alpha", "lora_dropout", "target_modules", "learning_rate", "lr_scheduler",
    "num_epochs", "max_steps", "micro_batch_size", "gradient_accumulation", "max_length", "precision",
    "quantization", "seed",
)


def render_model_card(info: RunInfo, kind: str, usage: str = "") -> str:
    """Markdown for `kind` ("merged model", "LoRA adapter", "GGUF model" ...)."""
    config = info.config
    profile = _profile(info.profile_id)
    header = {
        "base_model": info.base_model or "unknown",
        "library_name": "peft" if kind == "LoRA adapter" else "transformers",
        "tags": ["studio", "lora", "fine-tuned"] + (["gguf"] if "GGUF" in kind else []),
    }
    lines = [
        "---", yaml.safe_dump(header, sort_keys=False).strip(), "---", "",
        f"# {info.run_id}", "",
        f"A {kind} fine-tuned with Studio from `{info.base_model or 'an unknown base model'}`."
        + (f" The run was stopped before the end; this is its checkpoint at step {info.checkpoint_step:,}."
           if info.checkpoint_step is not None else ""), "",
        "## Intended use", "",
        (f"{profile.name}: {profile.summary} {profile.description}" if profile else
         "Whatever the training data taught it; the run does not record a use-case profile."), "",
        "## Training", "",
    ]
    if config:
        lines += [f"- Method: {config.method} (adapter rank {config.lora_r}, alpha {config.lora_alpha})"]
        lines += [f"- Dataset: {Path(config.dataset_path).name if config.dataset_path else 'not recorded'}"]
    lines += [
        f"- Training examples: {_known(info.train_examples)}; held out: {_known(info.eval_examples)}",
        "", "### Hyperparameters", "",
    ]
    if config:
        values = config.model_dump(mode="json")
        lines += ["| setting | value |", "|---|---|"]
        lines += [f"| {key} | {values[key]} |" for key in _HYPERPARAMETERS]
    else:
        lines += ["Not recorded: the run folder has no config.json."]
    lines += ["", "## Results", ""]
    if info.best_eval_loss is not None:
        lines += [f"- Best eval loss: {info.best_eval_loss:.4f}"]
    lines += [f"- {key}: {value}" for key, value in sorted(info.final_metrics.items()) if _printable(value)]
    if info.best_eval_loss is None and not info.final_metrics:
        lines += ["No evaluation results were recorded for this run."]
    lines += [
        "", "## Limitations", "",
        "- It knows only what its base model knew plus what the training data showed it; it can state "
        "wrong things confidently. Check important answers.",
        "- It inherits the base model's biases and licence; read the base model's card before sharing it.",
        "- Small models (under about 1B parameters) lose quality quickly under 4- or 5-bit quantization; "
        "prefer the f16 or q8_0 GGUF for them and read verification.json when one is present.",
    ]
    if usage:
        lines += ["", "## How to use", "", usage.strip()]
    return "\n".join(lines) + "\n"


def _profile(profile_id: str | None) -> Profile | None:
    if not profile_id:
        return None
    try:
        return get_profile(profile_id)
    except StudioError:
        return None


def _known(value: int | None) -> str:
    return "not recorded" if value is None else str(value)


def _printable(value: object) -> bool:
    return isinstance(value, int | float | str) and not isinstance(value, bool)
