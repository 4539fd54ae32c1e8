"""Model facts from config.json and safetensors headers, without loading weights."""

from __future__ import annotations

import json

import pytest

from studio.engine.errors import StudioError
from studio.engine.models.catalog import BUILTIN_CONFIG, BUILTIN_SIZE_MB
from studio.engine.models.facts import facts_from_config, llama_param_count, read_model_facts

LLAMA_8B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256,
    "max_position_embeddings": 131072, "tie_word_embeddings": False, "torch_dtype": "bfloat16",
}


@pytest.mark.slow
def test_builtin_facts_match_the_real_model(builtin_model_dir):
    facts = read_model_facts(builtin_model_dir)
    assert facts.name == "SmolLM2-135M-Instruct"
    assert facts.architecture == "LlamaForCausalLM"
    assert facts.n_params == 134_515_008  # exact, from the safetensors header
    assert (facts.hidden_size, facts.n_layers, facts.n_heads, facts.n_kv_heads) == (576, 30, 9, 3)
    assert facts.vocab_size == 49152 and facts.context_length == 8192
    assert facts.has_chat_template and facts.tie_word_embeddings
    assert facts.license == "apache-2.0"
    assert 400 < facts.size_on_disk_mb < 700
    # The shape formula agrees with the header count, and the catalog's pre-materialization copy is right.
    assert llama_param_count(facts) == facts.n_params
    config = json.loads((builtin_model_dir / "config.json").read_text())
    assert {k: config[k] for k in BUILTIN_CONFIG} == BUILTIN_CONFIG
    assert abs(facts.size_on_disk_mb - BUILTIN_SIZE_MB) < 5


def test_llama_8b_parameter_count_from_the_config():
    facts = facts_from_config(LLAMA_8B, name="meta-llama/Llama-3.1-8B")
    assert facts.n_params == 8_030_261_248
    assert facts.dtype == "bfloat16" and facts.head_dim == 128


def test_multimodal_configs_read_the_text_model():
    facts = facts_from_config({"architectures": ["X"], "text_config": LLAMA_8B}, name="vlm")
    assert facts.hidden_size == 4096 and facts.n_layers == 32


def test_folder_reading_uses_readme_license_and_tokenizer_template(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(LLAMA_8B))
    (tmp_path / "README.md").write_text("---\nlicense: llama3.1\nlanguage: en\n---\n# Model\n")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": "{{ messages }}"}))
    facts = read_model_facts(tmp_path)
    assert facts.license == "llama3.1" and facts.has_chat_template
    assert facts.n_params == 8_030_261_248 and facts.size_on_disk_mb == 0
    assert facts.name == tmp_path.name


def test_safetensors_header_count_wins_over_the_formula(tmp_path):
    import numpy as np
    from safetensors.numpy import save_file

    (tmp_path / "config.json").write_text(json.dumps(LLAMA_8B))
    save_file({"a": np.zeros((3, 5), dtype=np.float32)}, str(tmp_path / "model-00001-of-00002.safetensors"))
    save_file({"b": np.zeros((7,), dtype=np.float16), "c": np.zeros((2, 2, 2), dtype=np.int8)},
              str(tmp_path / "model-00002-of-00002.safetensors"))
    facts = read_model_facts(tmp_path)
    assert facts.n_params == 15 + 7 + 8
    assert facts.size_on_disk_mb >= 0


def test_a_damaged_safetensors_header_falls_back_to_the_formula(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(LLAMA_8B))
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    assert read_model_facts(tmp_path).n_params == 8_030_261_248


@pytest.mark.parametrize(("content", "code"), [
    ("{broken", "model_config_damaged"),
    ("[1, 2]", "model_config_damaged"),
    ('{"model_type": "mystery"}', "model_config_unsupported"),
])
def test_bad_configs_give_clear_errors(tmp_path, content, code):
    (tmp_path / "config.json").write_text(content)
    with pytest.raises(StudioError) as info:
        read_model_facts(tmp_path)
    assert info.value.code == code and info.value.exit_code == 4
    assert info.value.actions
