"""Hugging Face folder -> GGUF (f16, q8_0 ...), and PEFT adapter -> GGUF adapter, with llama.cpp's own
converters, run offline as subprocesses.

A subprocess, because the converter is a script with its own copy of gguf-py, because a crash in it
must not take Studio down, and because cancelling means simply ending it.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import math
import os
import re
import shutil
from pathlib import Path

from studio.engine.errors import StudioError
from studio.engine.export.adapter import WEIGHT_FILES, check_adapter
from studio.engine.export.child import run_child
from studio.engine.export.converter_setup import (
    CONVERTER_SCRIPT,
    LORA_CONVERTER_SCRIPT,
    converter_env,
    require_converter,
    supported_architectures,
)
from studio.engine.export.pretokenizer import UNRECOGNIZED, candidates, tokenization_agreement
from studio.engine.frozen import module_command, script_command
from studio.engine.paths import cache_dir
from studio.engine.progress import Span

CONVERTER_TYPES = ("f32", "f16", "bf16", "q8_0")
BASE_GGUF_CACHE = "gguf-base"  # under Studio's cache folder: base models as f16 GGUF, for adapter GGUFs
_TENSOR_LINE = re.compile(r"blk\.(\d+)\.")  # layers come in name order (0, 1, 10 ...): count them
_WRITING = re.compile(r"Writing:\s+(\d+)%")  # tqdm, 70% onwards
_NAMED_FAMILIES = {"phi3": "Phi-3"}  # model_type -> the name llama.cpp looks for (see _model_name_args)


def model_architecture(model_dir: Path) -> str:
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        return str(config["architectures"][0])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        raise StudioError(
            what=f"Studio cannot tell which kind of model is in {model_dir}.",
            why="Its config.json is missing or names no architecture.",
            actions=["Export a model folder that has a complete config.json."],
            code="model_config_invalid",
        ) from None


def check_remote_code(model_dir: Path, allow_remote_code: bool = False) -> None:
    """Refuse a folder that ships its own Python code (*.py, or an auto_map in config.json) unless the run
    allows remote code: llama.cpp's converter loads some families with trust_remote_code, which runs it."""
    if allow_remote_code:
        return
    code = sorted(path.name for path in model_dir.glob("*.py"))
    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        config = {}
    if isinstance(config, dict) and "auto_map" in config:
        code.append("config.json's auto_map")
    if code:
        raise StudioError(
            what=f"Studio will not convert {model_dir} to GGUF: it carries its own Python code ({', '.join(code)}).",
            why="llama.cpp's converter can run code shipped with a model, and this run does not allow remote "
                "code for its model.",
            actions=["Export the adapter or the merged Hugging Face model instead (--format adapter or hf).",
                     "If you trust this model's code, train with trust_remote_code switched on, then export.",
                     "Or use a model folder without *.py files and without auto_map."],
            code="remote_code_refused",
        )


def check_architecture(model_dir: Path, allow_remote_code: bool = False) -> str:
    """The model's architecture if the converter supports it (and the folder brings no code the run does not
    allow); else an error listing what it supports."""
    check_remote_code(model_dir, allow_remote_code)
    architecture = model_architecture(model_dir)
    supported = supported_architectures()
    if architecture not in supported:
        causal = [name for name in supported if name.endswith("ForCausalLM")]
        raise StudioError(
            what=f"Studio cannot make a GGUF file from a {architecture} model.",
            why=f"llama.cpp's converter does not support this architecture. It supports {len(supported)}, "
                f"among them: {', '.join(causal)}.",
            actions=[
                "Export the merged Hugging Face model or the adapter instead (--format hf or adapter).",
                "Fine-tune one of the supported model families (Llama, Qwen2, Mistral, Gemma, SmolLM ...).",
            ],
            code="architecture_unsupported",
        )
    return architecture


def convert_to_gguf(
    model_dir: Path, out_file: Path, outtype: str = "f16", steps: Span | None = None, *,
    allow_remote_code: bool = False,
) -> Path:
    """Write `out_file` from the HF folder `model_dir`; cancel ends the converter and removes its output."""
    if outtype not in CONVERTER_TYPES:
        raise ValueError(f"outtype must be one of {CONVERTER_TYPES}")
    folder = require_converter()
    check_architecture(model_dir, allow_remote_code)
    steps = steps or Span()
    args = (str(model_dir), "--outtype", outtype, "--outfile", str(out_file), *_model_name_args(model_dir))
    failure = StudioError(
        what="llama.cpp's converter could not turn this model into a GGUF file.",
        actions=["Export the merged Hugging Face model instead (--format hf).",
                 "Check that the base model folder is complete (config, weights and tokenizer)."],
        code="gguf_conversion_failed",
    )
    label, layers = f"GGUF ({outtype})", _layer_count(model_dir)
    try:
        return _run_converter(script_command(folder / CONVERTER_SCRIPT, *args), folder, out_file, layers, label,
                              failure, steps)
    except StudioError as error:
        if UNRECOGNIZED not in (error.why or ""):
            raise
    name = proven_pretokenizer(model_dir, folder, out_file, steps)
    return _run_converter(_named_pre_command(name, folder, *args), folder, out_file, layers, label, failure,
                          steps)


def proven_pretokenizer(model_dir: Path, folder: Path, out_file: Path, steps: Span) -> str:
    """The llama.cpp pre-tokenizer that tokenizes like the model's own tokenizer, for a BPE tokenizer the
    converter did not recognise; each candidate is tried on a vocabulary-only GGUF (seconds, no weights)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    trial = out_file.with_name(f".{out_file.name}.vocab")
    tried: list[str] = []
    try:
        for name in candidates(model_dir):
            steps.report(f"Matching the tokenizer's pre-tokenizer: trying llama.cpp's '{name}'", 0.0)
            command = _named_pre_command(name, folder, str(model_dir), "--vocab-only", "--outfile", str(trial),
                                         *_model_name_args(model_dir))
            if run_child(command, converter_env(folder), steps).returncode != 0 or not trial.is_file():
                tried.append(f"{name} (the converter failed)")
                continue
            agreement = tokenization_agreement(trial, tokenizer)
            if agreement.share == 1.0:
                return name
            tried.append(f"{name} ({agreement.agreeing} of {agreement.total} sample texts agree)")
    finally:
        trial.unlink(missing_ok=True)
    raise StudioError(
        what="Studio cannot make a GGUF file whose tokenizer splits text like this model's.",
        why="llama.cpp's converter does not recognise this BPE tokenizer's pre-tokenizer (BPE pre-tokenizer "
            "was not recognized), and none of the llama.cpp pre-tokenizers Studio tried tokenizes a sample of "
            f"code, numbers, accents, emoji and whitespace the same way: {'; '.join(tried)}. A GGUF with a "
            "different split would read every prompt differently from the trained model.",
        actions=["Export the merged Hugging Face model instead (--format hf) and run it with transformers.",
                 "Or export the adapter (--format adapter) and apply it where the model's tokenizer is used.",
                 "If this tokenizer comes from a published model, check whether a newer llama-cpp-python "
                 "knows it, then run Studio's setup again."],
        code="gguf_pretokenizer_unknown",
    )


def _model_name_args(model_dir: Path) -> list[str]:
    """A --model-name naming the family where llama.cpp keys tokenizer behaviour on the GGUF's name.

    llama.cpp makes Phi-3's role markers swallow the newline after them (as its tokenizer.json says) only
    when general.name contains "phi-3"/"phi3"; a fine-tune saved in a folder of another name would
    otherwise tokenize every prompt differently from the model.
    """
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    family = _NAMED_FAMILIES.get(str(config.get("model_type", "")))
    if family is None or family.lower() in model_dir.name.lower():
        return []
    return ["--model-name", f"{family} {_safe_name(model_dir.name)}"]


def _named_pre_command(name: str, folder: Path, *args: str) -> list[str]:
    """The converter run through Studio's entry point, with `name` as its answer for an unknown pre-tokenizer."""
    return module_command("studio.engine.export.pretokenizer", name, str(folder / CONVERTER_SCRIPT), *args)


def convert_adapter_to_gguf(
    adapter_dir: Path, base_model_dir: Path, out_file: Path, steps: Span | None = None, *,
    allow_remote_code: bool = False,
) -> Path:
    """Write the PEFT adapter in `adapter_dir` as an f16 GGUF adapter for the base model in `base_model_dir`.

    llama.cpp applies it at load time (`--lora`, Ollama's ADAPTER), so the file stays a few megabytes.
    """
    folder = require_converter()
    check_architecture(base_model_dir, allow_remote_code)
    source, scratch = _adapter_for_converter(adapter_dir, out_file)
    command = script_command(folder / LORA_CONVERTER_SCRIPT, str(source), "--base", str(base_model_dir),
                             "--outtype", "f16", "--outfile", str(out_file))
    failure = StudioError(
        what="llama.cpp's converter could not turn this adapter into a GGUF file.",
        actions=["Export the adapter in its own format instead (--format adapter).",
                 "Or export the merged model as GGUF (--format gguf or ollama)."],
        code="gguf_adapter_conversion_failed",
    )
    try:
        return _run_converter(command, folder, out_file, _layer_count(base_model_dir), "GGUF adapter (f16)",
                              failure, steps or Span())
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def base_gguf(model_dir: Path, steps: Span | None = None, *, allow_remote_code: bool = False) -> Path:
    """The unmerged base model as an f16 GGUF, the file adapter GGUFs are applied to.

    Made once per base model (keyed by its folder and weight files) and kept in Studio's cache, so the
    second adapter export of the same base costs nothing; written under a temporary name and renamed,
    so a cancelled conversion never leaves a file that looks complete.
    """
    steps = steps or Span()
    target = cache_dir() / BASE_GGUF_CACHE / _model_key(model_dir) / f"{_safe_name(model_dir.name)}-f16.gguf"
    if target.is_file():
        steps.report("Using the base model's GGUF made earlier", 1.0)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    convert_to_gguf(model_dir, partial, "f16", steps, allow_remote_code=allow_remote_code)
    partial.replace(target)
    return target


def require_base_gguf(path: Path) -> Path:
    """`path` if the base model's GGUF is still there; else say how to get it back."""
    if not path.is_file():
        raise StudioError(
            what="The base model's GGUF file is missing.",
            why=f"The adapter GGUF is applied on top of it, and Studio expected it at {path}. It is kept in "
                "Studio's cache, which may have been cleaned while the export ran.",
            actions=["Export again: Studio makes the base model's GGUF again when it is missing.",
                     "Check that there is enough free disk space for it (about twice the model's size)."],
            code="base_gguf_missing",
        )
    return path


def _run_converter(
    command: list[str], folder: Path, out_file: Path, layers: int, label: str, failure: StudioError,
    steps: Span,
) -> Path:
    """Run one of llama.cpp's converter scripts with progress from its output; `failure` gets its last error."""
    seen_layers: set[str] = set()

    def on_line(line: str) -> None:
        if match := _WRITING.search(line):
            steps.report(f"Writing the {label} file", 0.7 + 0.3 * int(match.group(1)) / 100)
        elif match := _TENSOR_LINE.search(line):
            seen_layers.add(match.group(1))
            steps.report(f"Converting to {label}", 0.7 * min(len(seen_layers), layers) / layers)

    steps.report("Starting llama.cpp's converter", 0.0)
    try:
        result = run_child(command, converter_env(folder), steps, on_line)
    except BaseException:
        out_file.unlink(missing_ok=True)
        raise
    if result.returncode != 0 or not out_file.is_file():
        out_file.unlink(missing_ok=True)
        if result.out_of_space:
            raise OSError(errno.ENOSPC, "No space left on device", str(out_file))
        raise dataclasses.replace(failure, why=result.last_error())
    steps.report(f"{label} written", 1.0)
    return out_file


def check_adapter_convertible(adapter_dir: Path) -> dict[str, object]:
    """The adapter's PEFT config, if llama.cpp can apply it as a GGUF adapter; checked before any work.

    DoRA and PiSSA adapters are refused: llama.cpp cannot apply DoRA's magnitude vectors, and a PiSSA
    adapter only works on the PiSSA-adjusted base, not on the plain base model's GGUF.
    """
    config = check_adapter(adapter_dir)
    pissa = str(config.get("init_lora_weights", "")).lower().startswith("pissa")
    if config.get("use_dora") or pissa:
        method = "DoRA" if config.get("use_dora") else "PiSSA"
        raise StudioError(
            what=f"A {method} adapter cannot be exported as a GGUF adapter.",
            why="llama.cpp applies plain LoRA adapters only: " + (
                "it has no place for DoRA's extra magnitude weights." if method == "DoRA" else
                "a PiSSA adapter also changes the base model's own weights."),
            actions=["Export the merged model as GGUF instead (--format gguf or ollama).",
                     "Or export the adapter in its own format (--format adapter)."],
            code="adapter_not_convertible",
        )
    return config


def _adapter_for_converter(adapter_dir: Path, out_file: Path) -> tuple[Path, Path | None]:
    """The folder to hand the converter, and a scratch folder to remove afterwards (None when not needed).

    rsLoRA scales by alpha/sqrt(r) where llama.cpp scales by alpha/r, so such an adapter is handed over as
    a copy whose alpha gives llama.cpp the same scale.
    """
    config = check_adapter_convertible(adapter_dir)
    if not config.get("use_rslora"):
        return adapter_dir, None
    scratch = out_file.with_name(f".{out_file.name}.adapter")
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    for name in WEIGHT_FILES:
        if (adapter_dir / name).is_file():
            shutil.copy2(adapter_dir / name, scratch / name)
    rank = float(str(config.get("r") or 8))
    alpha = float(str(config.get("lora_alpha") or rank))
    config.update(lora_alpha=alpha * math.sqrt(rank), use_rslora=False)
    (scratch / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    return scratch, scratch


def _model_key(model_dir: Path) -> str:
    """Changes when the model folder or any of its weight, config or tokenizer files does, so a stale base
    GGUF is never reused."""
    digest = hashlib.sha256(str(model_dir.resolve()).encode())
    for path in sorted(model_dir.iterdir()):
        if path.is_file() and (path.suffix in {".safetensors", ".bin", ".json"}):
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "base"


def _layer_count(model_dir: Path) -> int:
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    return int(config.get("num_hidden_layers") or config.get("n_layer") or 1)
