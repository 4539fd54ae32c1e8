"""What the planner needs to know about a model, read from its files without loading any weights.

The parameter count comes from the safetensors headers when the weights are there (exact, a few KB read),
otherwise from the config's shapes for Llama-like architectures (most small chat models are).
"""

from __future__ import annotations

import json
import re
import struct
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, cast

from studio.engine.errors import ExitCode, StudioError
from studio.engine.models.resolve import resolve_model

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


@dataclass(frozen=True)
class ModelFacts:
    name: str
    path: str | None
    architecture: str
    n_params: int
    hidden_size: int
    n_layers: int
    n_heads: int
    n_kv_heads: int
    vocab_size: int
    context_length: int
    dtype: str
    license: str | None
    has_chat_template: bool
    size_on_disk_mb: float
    intermediate_size: int = 0
    head_dim: int = 0
    tie_word_embeddings: bool = False
    model_type: str = ""
    n_experts: int = 1

    def __post_init__(self) -> None:
        if not self.intermediate_size:
            object.__setattr__(self, "intermediate_size", 4 * self.hidden_size)
        if not self.head_dim:
            object.__setattr__(self, "head_dim", self.hidden_size // max(1, self.n_heads))

    @property
    def embedding_params(self) -> int:
        """Parameters in the input embedding and (untied) output head: these are not LoRA targets."""
        return self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_model_facts(ref_or_path: str | Path | None) -> ModelFacts:
    """Facts for a model reference or folder; raises StudioError when it cannot be found or read."""
    folder = ref_or_path if isinstance(ref_or_path, Path) else resolve_model(ref_or_path)
    config = _read_json(folder / "config.json", required=True)
    return facts_from_config(
        config,
        name=_display_name(folder, config),
        path=folder,
        n_params=safetensors_param_count(folder),
        license=_license(folder),
        has_chat_template=_has_chat_template(folder),
        size_on_disk_mb=_weights_size_mb(folder),
    )


def facts_from_config(
    config: dict[str, Any],
    *,
    name: str,
    path: Path | None = None,
    n_params: int | None = None,
    license: str | None = None,
    has_chat_template: bool = False,
    size_on_disk_mb: float = 0.0,
) -> ModelFacts:
    """Facts from a config.json mapping (multimodal configs keep the language model under text_config)."""
    nested = config.get("text_config")
    text: dict[str, Any] = nested if isinstance(nested, dict) else config
    try:
        hidden = int(_first(text, "hidden_size", "n_embd", "d_model"))
        layers = int(_first(text, "num_hidden_layers", "n_layer", "num_layers"))
        heads = int(_first(text, "num_attention_heads", "n_head", "num_heads"))
        vocab = int(_first(text, "vocab_size", default=config.get("vocab_size", 32000)))
    except (KeyError, TypeError, ValueError):
        raise StudioError(
            what=f"Studio cannot read the shape of the model '{name}'.",
            why="Its config.json lacks the usual size fields (hidden_size, num_hidden_layers, num_attention_heads).",
            actions=["Choose a text-generation model such as a Llama, Qwen, Mistral, Gemma or SmolLM model.",
                     "Run `studio models` to see models Studio can use."],
            code="model_config_unsupported",
            exit_code=ExitCode.MODEL_NOT_FOUND,
        ) from None
    kv_heads = int(text.get("num_key_value_heads") or heads)
    intermediate = int(_first(text, "intermediate_size", "n_inner", "ffn_dim", default=4 * hidden) or 4 * hidden)
    head_dim = int(text.get("head_dim") or hidden // heads)
    tied = bool(config.get("tie_word_embeddings", text.get("tie_word_embeddings", False)))
    experts = int(text.get("num_local_experts") or text.get("num_experts") or 1)
    facts = ModelFacts(
        name=name,
        path=str(path) if path else None,
        architecture=(config.get("architectures") or [text.get("model_type", "unknown")])[0],
        n_params=0,
        hidden_size=hidden,
        n_layers=layers,
        n_heads=heads,
        n_kv_heads=kv_heads,
        vocab_size=vocab,
        context_length=int(_first(text, "max_position_embeddings", "n_positions", "max_seq_len",
                                  "seq_length", default=2048)),
        dtype=str(config.get("dtype") or config.get("torch_dtype") or text.get("dtype") or "float32"),
        license=license,
        has_chat_template=has_chat_template,
        size_on_disk_mb=size_on_disk_mb,
        intermediate_size=intermediate,
        head_dim=head_dim,
        tie_word_embeddings=tied,
        model_type=str(text.get("model_type") or config.get("model_type") or ""),
        n_experts=experts,
    )
    count = n_params or llama_param_count(facts, attention_bias=bool(text.get("attention_bias")))
    return _replace(facts, n_params=count)


def llama_param_count(facts: ModelFacts, attention_bias: bool = False) -> int:
    """Parameters of a Llama-style decoder (GQA attention, gated MLP, RMSNorm) from its shapes."""
    h, d = facts.hidden_size, facts.head_dim
    q_out, kv_out = facts.n_heads * d, facts.n_kv_heads * d
    attention = h * q_out + 2 * h * kv_out + q_out * h
    if attention_bias:
        attention += q_out + 2 * kv_out
    mlp = 3 * h * facts.intermediate_size * facts.n_experts + (h * facts.n_experts if facts.n_experts > 1 else 0)
    per_layer = attention + mlp + 2 * h
    return facts.n_layers * per_layer + h + facts.embedding_params


def safetensors_param_count(folder: Path) -> int | None:
    """Exact parameter count from the safetensors headers (8 bytes + a JSON header per file)."""
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        return None
    total = 0
    try:
        for file in files:
            with file.open("rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                if length > 100_000_000:
                    return None
                header = json.loads(handle.read(length))
            for key, info in header.items():
                if key == "__metadata__":
                    continue
                count = 1
                for dim in info["shape"]:
                    count *= int(dim)
                total += count
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return None
    return total or None


def _first(mapping: dict[str, Any], *keys: str, default: Any = None) -> Any:
    for key in keys:
        if mapping.get(key) is not None:
            return mapping[key]
    if default is None:
        raise KeyError(keys[0])
    return default


def _replace(facts: ModelFacts, **changes: Any) -> ModelFacts:
    return ModelFacts(**{**asdict(facts), **changes})


def _read_json(path: Path, required: bool = False) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        problem = None if isinstance(data, dict) else "It does not hold a mapping of settings."
    except FileNotFoundError:
        if not required:
            return {}
        raise StudioError(
            what=f"The folder {path.parent} is not a model Studio can use.",
            why="It has no config.json.",
            actions=["Pass the folder that contains config.json.", "Run `studio models` to see usable models."],
            code="model_folder_invalid",
            exit_code=ExitCode.MODEL_NOT_FOUND,
        ) from None
    except (OSError, ValueError) as exc:
        problem = str(exc).splitlines()[0]
    if problem is None:
        return cast(dict[str, Any], data)
    if not required:
        return {}
    raise StudioError(
        what=f"The model file {path} is damaged or cannot be read.",
        why=problem,
        actions=["Download or copy the model again.", "Choose another model with `studio models`."],
        code="model_config_damaged",
        exit_code=ExitCode.MODEL_NOT_FOUND,
    )


def _display_name(folder: Path, config: dict[str, Any]) -> str:
    """A readable name: 'owner/name' for Hub cache snapshots, else the folder name."""
    match = re.search(r"models--([^/\\]+)--([^/\\]+)[/\\]snapshots", str(folder))
    if match:
        return f"{match.group(1)}/{match.group(2)}"
    marker = _read_json(folder / "studio-materialized.json")
    if marker:
        from studio.engine.models.builtin import BUILTIN_NAME

        return BUILTIN_NAME
    return folder.name or str(config.get("_name_or_path", "model"))


def _license(folder: Path) -> str | None:
    """The license from the model card's front matter, when it has one."""
    try:
        text = (folder / "README.md").read_text(encoding="utf-8", errors="replace")[:8000]
    except OSError:
        return "apache-2.0" if (folder / "studio-materialized.json").exists() else None
    match = re.search(r"^---\s*$(.*?)^---\s*$", text, re.MULTILINE | re.DOTALL)
    if match:
        found = re.search(r"^license:\s*(\S+)", match.group(1), re.MULTILINE)
        if found:
            return found.group(1).strip("'\"")
    return None


def _has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    return bool(_read_json(folder / "tokenizer_config.json").get("chat_template"))


def _weights_size_mb(folder: Path) -> float:
    """Size of the weight files (following the Hub cache's symlinks to the real blobs)."""
    total = 0
    for file in folder.iterdir():
        if file.name.endswith(WEIGHT_SUFFIXES):
            try:
                total += file.resolve().stat().st_size
            except OSError:
                continue
    return round(total / (1024 * 1024), 1)
