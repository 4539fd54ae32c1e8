"""Fold the adapter into its base model and save an ordinary Hugging Face model folder.

The merged folder is what people load with plain transformers, and it is the input of the GGUF
converter. The base is always loaded unquantized in fp32, so QLoRA runs merge into full weights.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from studio.engine.errors import StudioError
from studio.engine.export.adapter import check_adapter
from studio.engine.export.atomic import staged_output
from studio.engine.progress import Span

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")
SENTENCEPIECE_FILE = "tokenizer.model"


def load_merged(
    base_model_path: Path, adapter_path: Path, steps: Span | None = None
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The base model with the adapter folded in (fp32, eval mode) and the tokenizer the run trained with."""
    steps = steps or Span()
    check_adapter(adapter_path)
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    steps.report("Loading the base model", 0.0)
    try:
        base = AutoModelForCausalLM.from_pretrained(base_model_path, dtype=torch.float32, use_safetensors=True)
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
    sources = [Path(str(tokenizer.name_or_path)), Path(str(getattr(model.config, "_name_or_path", "")))]
    complete_tokenizer_files(folder, [source for source in sources if str(source)])
    _record_add_bos(tokenizer, folder)


def _record_add_bos(tokenizer: PreTrainedTokenizerBase, folder: Path) -> None:
    """Write into tokenizer_config.json whether the tokenizer starts a text with its BOS token.

    transformers 5 leaves add_bos_token out; llama.cpp's converter then records nothing and llama.cpp (and
    Ollama) guess from the vocabulary type, giving every prompt of a sentencepiece model a BOS token its
    tokenizer never adds (Phi-3's chat template has none), which no Ollama template can take away.
    """
    config_file = folder / "tokenizer_config.json"
    if not config_file.is_file():
        return
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if isinstance(config.get("add_bos_token"), bool):
        return
    bos = tokenizer.bos_token_id
    config["add_bos_token"] = bos is not None and tokenizer("a")["input_ids"][:1] == [bos]
    config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def complete_tokenizer_files(folder: Path, sources: list[Path]) -> None:
    """Give a folder saved by transformers 5 what its tokenizer files lack for other readers.

    transformers 5 writes tokenizer.json only: no sentencepiece model, and no added_tokens_decoder in
    tokenizer_config.json. llama.cpp's converter needs both for sentencepiece families (Gemma, Mistral,
    Phi-3): without the model it fails or takes the wrong tokenizer path, and without the table it turns
    chat markers such as <start_of_turn> into plain text. The sentencepiece model is copied from the first
    source folder (the run's adapter, then its base model) that has one.
    """
    if not (folder / SENTENCEPIECE_FILE).is_file():
        for source in sources:
            if (source / SENTENCEPIECE_FILE).is_file():
                shutil.copy2(source / SENTENCEPIECE_FILE, folder / SENTENCEPIECE_FILE)
                break
    config_file, tokenizer_file = folder / "tokenizer_config.json", folder / "tokenizer.json"
    if not (config_file.is_file() and tokenizer_file.is_file()):
        return
    config = json.loads(config_file.read_text(encoding="utf-8"))
    if "added_tokens_decoder" in config:
        return
    added = json.loads(tokenizer_file.read_text(encoding="utf-8")).get("added_tokens") or []
    config["added_tokens_decoder"] = {str(token["id"]): {key: value for key, value in token.items() if key != "id"}
                                      for token in added}
    config_file.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def export_merged(
    base_model_path: Path, adapter_path: Path, out_dir: Path, card: str, steps: Span | None = None
) -> Path:
    """The merged model as a complete folder at `out_dir`, or nothing at all."""
    steps = steps or Span()
    model, tokenizer = load_merged(base_model_path, adapter_path, steps.sub(0.0, 0.5))
    with staged_output(out_dir) as staging:
        steps.report("Saving the merged model", 0.55)
        save_merged(model, tokenizer, staging)
        steps.check()
        (staging / "README.md").write_text(card, encoding="utf-8")
    steps.report("Merged model saved", 1.0)
    return out_dir
