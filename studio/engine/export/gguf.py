"""Hugging Face folder -> GGUF (f16, q8_0 ...) with llama.cpp's own converter, run offline as a subprocess.

A subprocess, because the converter is a script with its own copy of gguf-py, because a crash in it
must not take Studio down, and because cancelling means simply ending it.
"""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path

from studio.engine.errors import StudioError
from studio.engine.export.child import run_child
from studio.engine.export.converter_setup import (
    CONVERTER_SCRIPT,
    converter_env,
    require_converter,
    supported_architectures,
)
from studio.engine.export.progress import Steps
from studio.frozen import script_command

CONVERTER_TYPES = ("f32", "f16", "bf16", "q8_0")
_TENSOR_LINE = re.compile(r"blk\.(\d+)\.")  # layers come in name order (0, 1, 10 ...): count them
_WRITING = re.compile(r"Writing:\s+(\d+)%")  # tqdm, 70% onwards


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


def check_architecture(model_dir: Path) -> str:
    """The model's architecture if the converter supports it; else an error listing what it supports."""
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
    model_dir: Path, out_file: Path, outtype: str = "f16", steps: Steps | None = None
) -> Path:
    """Write `out_file` from the HF folder `model_dir`; cancel ends the converter and removes its output."""
    steps = steps or Steps()
    if outtype not in CONVERTER_TYPES:
        raise ValueError(f"outtype must be one of {CONVERTER_TYPES}")
    folder = require_converter()
    check_architecture(model_dir)
    layers = _layer_count(model_dir)
    seen_layers: set[str] = set()

    def on_line(line: str) -> None:
        if match := _WRITING.search(line):
            steps.report(f"Writing the GGUF file ({outtype})", 0.7 + 0.3 * int(match.group(1)) / 100)
        elif match := _TENSOR_LINE.search(line):
            seen_layers.add(match.group(1))
            steps.report(f"Converting to GGUF ({outtype})", 0.7 * min(len(seen_layers), layers) / layers)

    command = script_command(folder / CONVERTER_SCRIPT, str(model_dir), "--outtype", outtype,
                             "--outfile", str(out_file))
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
        raise StudioError(
            what="llama.cpp's converter could not turn this model into a GGUF file.",
            why=result.last_error(),
            actions=["Export the merged Hugging Face model instead (--format hf).",
                     "Check that the base model folder is complete (config, weights and tokenizer)."],
            code="gguf_conversion_failed",
        )
    steps.report(f"GGUF ({outtype}) written", 1.0)
    return out_file


def _layer_count(model_dir: Path) -> int:
    config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    return int(config.get("num_hidden_layers") or config.get("n_layer") or 1)
