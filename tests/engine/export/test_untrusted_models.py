"""Model folders can carry code: the GGUF converter refuses one that brings Python code unless the run allows
remote code, and model weights are only ever read from safetensors, never unpickled."""

from __future__ import annotations

import json
import shutil

import pytest

from studio.engine.errors import StudioError
from studio.engine.export.gguf import check_architecture, check_remote_code


@pytest.fixture
def model_copy(tmp_path, tiny_model_dir):
    return shutil.copytree(tiny_model_dir, tmp_path / "model")


def test_python_files_are_refused_unless_allowed(model_copy):
    check_architecture(model_copy)  # a plain folder converts
    (model_copy / "modeling_evil.py").write_text("import os\n")
    with pytest.raises(StudioError) as caught:
        check_architecture(model_copy)
    assert caught.value.code == "remote_code_refused" and "modeling_evil.py" in caught.value.what
    assert len(caught.value.actions) >= 2
    check_remote_code(model_copy, allow_remote_code=True)


def test_auto_map_is_refused_unless_allowed(model_copy):
    config = json.loads((model_copy / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "remote--modeling.Model"}
    (model_copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(StudioError) as caught:
        check_remote_code(model_copy)
    assert "auto_map" in caught.value.what
    check_remote_code(model_copy, allow_remote_code=True)


def test_a_model_with_only_pickled_weights_is_not_loaded(tmp_path, tiny_model_dir):
    import torch
    from safetensors.torch import load_file

    from studio.engine.library.loading import load_base

    pickled = tmp_path / "pickled"
    shutil.copytree(tiny_model_dir, pickled, ignore=shutil.ignore_patterns("*.safetensors*"))
    torch.save(load_file(tiny_model_dir / "model.safetensors"), pickled / "pytorch_model.bin")
    assert (pickled / "pytorch_model.bin").is_file() and not list(pickled.glob("*.safetensors"))
    with pytest.raises(OSError, match="safetensors"):
        load_base(str(pickled))
    assert load_base(str(tiny_model_dir)).model is not None  # the safetensors folder still loads
