"""TrainConfig: validation in plain language, JSON/YAML files, presets, and the JSON schema."""

from __future__ import annotations

import json

import pytest

from studio.engine.config import (
    TrainConfig,
    export_preset,
    import_preset,
    list_presets,
    load_preset,
    save_preset,
)
from studio.engine.errors import StudioError


def test_defaults_are_valid_and_qlora_implies_4bit():
    config = TrainConfig()
    assert config.effective_batch_size == config.micro_batch_size * config.gradient_accumulation
    assert TrainConfig(method="qlora").quantization == "4bit"


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_save_and_load_round_trip(tmp_path, suffix):
    config = TrainConfig(lora_r=8, target_modules=["q_proj", "v_proj"], max_length=256)
    path = config.save(tmp_path / f"run{suffix}")
    assert TrainConfig.load(path) == config
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize(("data", "words"), [
    ({"lora_r": "sixteen"}, ["lora_r", "sixteen"]),
    ({"lora_r": 0}, ["lora_r", "at least 1"]),
    ({"learning_rate": 1.0}, ["learning_rate", "at most"]),
    ({"method": "magic"}, ["method", "lora"]),
    ({"batch": 4}, ["batch", "not a setting"]),
])
def test_wrong_types_and_out_of_range_values_are_explained(tmp_path, data, words):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(StudioError) as info:
        TrainConfig.load(path)
    error = info.value
    assert error.code == "config_invalid" and error.actions
    for word in words:
        assert word in error.why


@pytest.mark.parametrize(("name", "content", "code"), [
    ("broken.json", "{nope", "config_syntax"),
    ("broken.yaml", "a: [1, 2", "config_syntax"),
    ("list.json", "[1, 2]", "config_shape"),
])
def test_unreadable_files_are_explained(tmp_path, name, content, code):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(StudioError) as info:
        TrainConfig.load(path)
    assert info.value.code == code


def test_missing_file(tmp_path):
    with pytest.raises(StudioError) as info:
        TrainConfig.load(tmp_path / "nothing.json")
    assert info.value.code == "config_unreadable"


def test_plan_output_is_accepted_as_is(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"config": {"lora_r": 4}, "explanations": {}, "fits": True}))
    assert TrainConfig.load(path).lora_r == 4


def test_updated_validates():
    with pytest.raises(StudioError):
        TrainConfig().updated(micro_batch_size=-1)
    assert TrainConfig().updated(micro_batch_size=2).micro_batch_size == 2


def test_presets_save_list_load_import_export(tmp_path):
    save_preset("My fast/test", TrainConfig(lora_r=4))
    assert list_presets() == ["My fast_test"]
    assert load_preset("My fast_test").lora_r == 4
    exported = export_preset("My fast_test", tmp_path / "out.yaml")
    import_preset(exported, name="again")
    assert load_preset("again") == load_preset("My fast_test")
    with pytest.raises(StudioError) as info:
        load_preset("absent")
    assert "My fast_test" in info.value.actions[0]


def test_json_schema_describes_every_field():
    schema = TrainConfig.json_schema()
    assert set(schema["properties"]) == set(TrainConfig.model_fields)
    assert all(prop.get("description") for prop in schema["properties"].values())
