"""Shared fixtures. Every test gets its own empty Studio home and never touches the network.

The built-in model is materialized once per machine into a shared folder (STUDIO_TEST_MODELS_DIR, by
default ~/.cache/studio-test-models), because doing it per test would cost a minute each time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.engine.library.factory import Library
    from tests.families import FamilyModels

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SHARED_MODELS = Path(os.environ.get("STUDIO_TEST_MODELS_DIR", Path.home() / ".cache" / "studio-test-models"))


@pytest.fixture(autouse=True)
def studio_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "studio-home"
    home.mkdir()
    monkeypatch.setenv("STUDIO_HOME", str(home))
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(SHARED_MODELS))
    # No test reaches the desktop's session bus: a developer's desktop gets no notifications from the suite,
    # and the tests that check D-Bus start a private bus of their own (tests/gui/monitor/test_desktop_bus.py).
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'no-session-bus'}")
    return home


@pytest.fixture(scope="session")
def builtin_model_dir() -> Path:
    """The real built-in SmolLM2-135M-Instruct as a Hugging Face folder."""
    os.environ["STUDIO_MODELS_DIR"] = str(SHARED_MODELS)
    from studio.engine.models.builtin import ensure_builtin

    return ensure_builtin()


@pytest.fixture(scope="session")
def tiny_model_dir(builtin_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised two-layer Llama with the built-in model's tokenizer and chat template.

    Fast enough for many training tests; one test per capability still runs the real model.
    """
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    target = SHARED_MODELS / "tiny-llama-test"
    if (target / "config.json").exists():
        return target
    tokenizer = AutoTokenizer.from_pretrained(builtin_model_dir)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    staging = target.with_name(target.name + ".partial")
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    staging.rename(target)
    return target



@pytest.fixture(scope="session")
def library_source(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two real trained runs (`pip` 1.0.0 and its continuation 1.1.0), built once per test session."""
    from tests.engine.library.factory import build_library_home

    return build_library_home(tmp_path_factory.getbasetemp() / "library-home", tiny_model_dir)


@pytest.fixture
def library(library_source: Path, studio_home: Path) -> Library:
    """The library runs, installed fresh into this test's Studio home."""
    from tests.engine.library.factory import install_library

    return install_library(library_source, studio_home)


@pytest.fixture(scope="session")
def family_models(builtin_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> FamilyModels:
    """Tiny Llama 3, Qwen2.5, Gemma 3, Mistral and Phi-3 models (tests/families), each built on first use."""
    from tests.families import FamilyModels

    return FamilyModels(tmp_path_factory.mktemp("families"), builtin_model_dir)
