"""Which models a person can pick: the built-in one, those already on this machine, and Hub search results,
each with a verdict on whether it fits this machine for training.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from studio.engine.config import Precision, TrainConfig
from studio.engine.errors import StudioError
from studio.engine.hardware import HardwareProfile
from studio.engine.models.builtin import BUILTIN_FOLDER, BUILTIN_MODEL_ID, BUILTIN_NAME, builtin_dir, is_materialized
from studio.engine.models.facts import ModelFacts, facts_from_config, read_model_facts
from studio.engine.models.hub_reach import check_hub_reachable, hub_network_reason, hub_offline_error
from studio.engine.paths import models_dir
from studio.engine.planner.memory import memory_budget_mb, peak_memory
from studio.engine.planner.rules import precision

log = logging.getLogger(__name__)

Source = Literal["builtin", "hf_cache", "folder", "hub"]
FitStatus = Literal["fits", "fits_4bit", "does_not_fit"]

# The shipped model's config, so the catalog can describe it before it is materialized (a minute's work
# done on first use). tests/engine/models checks it against the materialized config.json.
BUILTIN_CONFIG: dict[str, Any] = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 576, "intermediate_size": 1536,
    "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64,
    "vocab_size": 49152, "max_position_embeddings": 8192, "tie_word_embeddings": True, "dtype": "float32",
}
BUILTIN_LICENSE = "apache-2.0"
BUILTIN_SIZE_MB = 513.2
# Fit checks assume a modest run: one example of this length per micro-batch, with checkpointing.
FIT_LENGTH = 512


@dataclass(frozen=True)
class ModelEntry:
    ref: str  # what to pass as --model / base_model
    name: str
    source: Source
    path: str | None = None
    facts: ModelFacts | None = None
    n_params: int | None = None
    size_mb: float | None = None
    license: str | None = None
    context_length: int | None = None
    downloads: int | None = None
    likes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref, "name": self.name, "source": self.source, "path": self.path,
            "n_params": self.n_params, "size_mb": self.size_mb, "license": self.license,
            "context_length": self.context_length, "downloads": self.downloads, "likes": self.likes,
            "architecture": self.facts.architecture if self.facts else None,
            "has_chat_template": self.facts.has_chat_template if self.facts else None,
        }


@dataclass(frozen=True)
class FitVerdict:
    status: FitStatus
    reason: str
    needs_mb: float = 0.0
    budget_mb: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"status": self.status, "reason": self.reason, "needs_mb": round(self.needs_mb),
                "budget_mb": round(self.budget_mb)}


def _entry(ref: str, source: Source, facts: ModelFacts) -> ModelEntry:
    return ModelEntry(ref=ref, name=facts.name, source=source, path=facts.path, facts=facts,
                      n_params=facts.n_params, size_mb=facts.size_on_disk_mb, license=facts.license,
                      context_length=facts.context_length)


def builtin_entry() -> ModelEntry:
    if is_materialized():
        return _entry(BUILTIN_MODEL_ID, "builtin", read_model_facts(builtin_dir()))
    facts = facts_from_config(BUILTIN_CONFIG, name=BUILTIN_NAME, license=BUILTIN_LICENSE, has_chat_template=True,
                              size_on_disk_mb=BUILTIN_SIZE_MB)
    return _entry(BUILTIN_MODEL_ID, "builtin", facts)


def list_local_models() -> list[ModelEntry]:
    """Built-in first, then the Hugging Face cache, then folders under Studio's models directory."""
    entries = [builtin_entry()]
    seen: set[Path] = {builtin_dir().resolve()}
    for ref, folder in _hf_cache_models():
        facts = _facts_or_none(folder)
        if facts is not None:
            entries.append(_entry(ref, "hf_cache", facts))
            seen.add(folder.resolve())
    for folder in sorted(models_dir().iterdir()) if models_dir().is_dir() else []:
        if folder.name == BUILTIN_FOLDER or folder.resolve() in seen or not (folder / "config.json").is_file():
            continue
        facts = _facts_or_none(folder)
        if facts is not None:
            entries.append(_entry(str(folder), "folder", facts))
    return entries


def _facts_or_none(folder: Path) -> ModelFacts | None:
    """A broken folder is left out of the list (and logged) rather than breaking the whole list."""
    try:
        return read_model_facts(folder)
    except StudioError as exc:
        log.info("Skipping %s: %s", folder, exc.what)
        return None


def _hf_cache_models() -> list[tuple[str, Path]]:
    """(repo id, newest snapshot folder) for each cached model repository that has a config.json."""
    from huggingface_hub import constants, scan_cache_dir
    from huggingface_hub.errors import CacheNotFound, CorruptedCacheException

    try:
        cache = scan_cache_dir(constants.HF_HUB_CACHE)
    except (CacheNotFound, CorruptedCacheException, OSError):
        return []
    found = []
    for repo in sorted(cache.repos, key=lambda r: r.repo_id.lower()):
        if repo.repo_type != "model":
            continue
        revisions = sorted(repo.revisions, key=lambda rev: rev.last_modified, reverse=True)
        for revision in revisions:
            if (revision.snapshot_path / "config.json").is_file():
                found.append((repo.repo_id, revision.snapshot_path))
                break
    return found


def search_hub(query: str, limit: int = 20, timeout_s: float = 8.0, *, endpoint: str | None = None) -> list[ModelEntry]:
    """Text-generation models on the Hugging Face Hub matching `query`, most downloaded first.

    Only called when a person asks; offline or slow networks give a StudioError with a clear message.
    """
    base = endpoint or _default_endpoint()
    check_hub_reachable(base, min(3.0, timeout_s))
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = _search(query, limit, endpoint)
        except Exception as exc:
            outcome["error"] = exc

    # A daemon thread: a Hub that never answers must not keep the process alive after we give up on it.
    thread = threading.Thread(target=work, name="hub-search", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise hub_offline_error(f"The Hugging Face Hub did not answer within {timeout_s:g} seconds.")
    if "error" in outcome:
        raise hub_offline_error(hub_network_reason(outcome["error"]))
    return cast(list[ModelEntry], outcome["result"])


def _default_endpoint() -> str:
    from huggingface_hub import constants

    return constants.ENDPOINT


def _search(query: str, limit: int, endpoint: str | None) -> list[ModelEntry]:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint)
    results = api.list_models(search=query or None, pipeline_tag="text-generation", sort="downloads", limit=limit,
                              expand=["downloads", "likes", "safetensors", "cardData", "config"])
    entries = []
    for info in results:
        params = getattr(getattr(info, "safetensors", None), "total", None)
        card = getattr(info, "card_data", None)
        license_name = getattr(card, "license", None) if card is not None else None
        facts = _hub_facts(info.id, params, license_name, getattr(info, "config", None))
        entries.append(ModelEntry(ref=info.id, name=info.id, source="hub", facts=facts, n_params=params,
                                  license=license_name, downloads=getattr(info, "downloads", None),
                                  likes=getattr(info, "likes", None),
                                  context_length=facts.context_length if facts else None))
    return entries


def _hub_facts(repo_id: str, params: int | None, license_name: str | None, config: Any) -> ModelFacts | None:
    """Approximate facts for a model that is not downloaded: its parameter count and a typical shape."""
    if not params:
        return None
    hidden = max(256, round((params * 128 / 12) ** (1 / 3) / 64) * 64)  # hidden ≈ 128 x layers is typical
    layers = max(2, round(hidden / 128))
    shape = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": max(1, hidden // 128),
             "intermediate_size": int(hidden * 3.5), "vocab_size": 32000, "max_position_embeddings": 4096}
    if isinstance(config, dict) and isinstance(config.get("max_position_embeddings"), int):
        shape["max_position_embeddings"] = config["max_position_embeddings"]
    try:
        return facts_from_config(shape, name=repo_id, n_params=int(params), license=license_name)
    except StudioError:
        return None


def fit_verdict(facts: ModelFacts, hardware: HardwareProfile, *, max_length: int = FIT_LENGTH) -> FitVerdict:
    """Whether LoRA training of this model fits here, with 4-bit on CUDA as the fallback."""
    budget = memory_budget_mb(hardware)
    dtype = cast(Precision, precision(hardware)[0])
    lean = TrainConfig.from_dict({"micro_batch_size": 1, "gradient_accumulation": 16, "gradient_checkpointing": True,
                                  "max_length": min(max_length, facts.context_length), "precision": dtype})
    where = "GPU memory" if hardware.device == "cuda" else "memory"
    full = peak_memory(lean, hardware, facts).total_mb
    if full <= budget:
        return FitVerdict("fits", f"Needs about {_gb(full)} of the {_gb(budget)} of {where} free here.", full, budget)
    if hardware.device == "cuda":
        quantized = peak_memory(lean.updated(method="qlora", quantization="4bit"), hardware, facts).total_mb
        if quantized <= budget:
            return FitVerdict("fits_4bit", f"Needs 4-bit to fit: about {_gb(quantized)} in 4-bit, {_gb(full)} "
                                           f"in full precision, with {_gb(budget)} free.", quantized, budget)
        return FitVerdict("does_not_fit", f"Too large: even in 4-bit it needs about {_gb(quantized)}, and "
                                          f"{_gb(budget)} of GPU memory is free.", quantized, budget)
    reason = f"Too large for {_gb(budget)} of free memory: it needs about {_gb(full)}."
    if hardware.device == "cpu":
        reason += " 4-bit training needs an NVIDIA GPU."
    return FitVerdict("does_not_fit", reason, full, budget)


def _gb(mb: float) -> str:
    return f"{mb / 1024:.1f} GB"
