"""Fold the adapter into its base model and save an ordinary Hugging Face model folder.

The merged folder is what people load with plain transformers, and it is the input of the GGUF
converter. The base is always loaded unquantized in fp32, so QLoRA runs merge into full weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from studio.engine.errors import StudioError
from studio.engine.export.adapter import check_adapter
from studio.engine.export.atomic import staged_output
from studio.engine.export.progress import Steps

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


def load_merged(
    base_model_path: Path, adapter_path: Path, steps: Steps | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The base model with the adapter folded in (fp32, eval mode) and the tokenizer the run trained with."""
    steps = steps or Steps()
    check_adapter(adapter_path)
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    steps.report("Loading the base model", 0.0)
    try:
        base = AutoModelForCausalLM.from_pretrained(base_model_path, dtype=torch.float32)
    except (OSError, ValueError) as exc:
        raise StudioError(
            what=f"Studio could not load the base model from {base_model_path}.",
            why=str(exc).splitlines()[0],
            actions=["Check that the run's base model is still on this machine (`studio models`).",
                     "Re-download or re-materialize the base model, then export again."],
            code="base_model_unloadable",
        ) from None
    # A tokenizer saved with the adapter carries any template change made for training.
    own_tokenizer = any((adapter_path / name).is_file() for name in _TOKENIZER_FILES)
    tokenizer = AutoTokenizer.from_pretrained(adapter_path if own_tokenizer else base_model_path)
    steps.report("Applying the adapter", 0.5)
    try:
        model = PeftModel.from_pretrained(base, adapter_path).merge_and_unload()
    except (RuntimeError, ValueError, KeyError) as exc:
        raise StudioError(
            what="The adapter does not fit this base model.",
            why=str(exc).splitlines()[0],
            actions=["Export with the base model the run was trained on.",
                     "Check the run's config.json: base_model must name the same model."],
            code="adapter_mismatch",
        ) from None
    model.eval()
    steps.report("Adapter merged", 1.0)
    return model, tokenizer


def save_merged(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, folder: Path) -> None:
    """Safetensors weights, tokenizer with chat template, and generation config into an existing folder."""
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    if model.generation_config is not None:
        model.generation_config.save_pretrained(folder)


def export_merged(
    base_model_path: Path, adapter_path: Path, out_dir: Path, card: str, steps: Steps | None = None
) -> Path:
    """The merged model as a complete folder at `out_dir`, or nothing at all."""
    steps = steps or Steps()
    model, tokenizer = load_merged(base_model_path, adapter_path, steps.sub(0.0, 0.5))
    with staged_output(out_dir) as staging:
        steps.report("Saving the merged model", 0.55)
        save_merged(model, tokenizer, staging)
        steps.check()
        (staging / "README.md").write_text(card, encoding="utf-8")
    steps.report("Merged model saved", 1.0)
    return out_dir
