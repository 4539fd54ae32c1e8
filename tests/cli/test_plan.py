"""`studio plan`: a config TrainConfig.load accepts as-is, explanations, estimates, and clear bad-input errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from studio.cli.main import app
from studio.engine.config import TrainConfig

runner = CliRunner()


@pytest.mark.slow
def test_plan_json_for_the_builtin_model_round_trips_into_train_config(tmp_path, builtin_model_dir):
    result = runner.invoke(app, ["plan", "--model", "builtin", "--json", "--price-per-hour", "0.5"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) >= {"config", "explanations", "estimates", "warnings", "fits", "hardware", "model",
                         "alternatives"}
    assert data["fits"] is True
    assert data["model"]["n_params"] == 134_515_008
    assert data["config"]["base_model"] == "builtin:smollm2-135m-instruct"
    estimates = data["estimates"]
    for key in ("peak_memory_mb", "time_per_epoch_s", "total_time_s", "cost", "carbon_g"):
        assert estimates[key]["low"] <= estimates[key]["expected"] <= estimates[key]["high"]
    # The whole document and its config part are both accepted by TrainConfig.load.
    whole = tmp_path / "plan.json"
    whole.write_text(result.stdout)
    config_only = tmp_path / "config.json"
    config_only.write_text(json.dumps(data["config"]))
    assert TrainConfig.load(whole) == TrainConfig.load(config_only) == TrainConfig.from_dict(data["config"])
    for name in data["config"]:
        if data["config"][name] != getattr(TrainConfig(), name):
            assert name in data["explanations"]


def test_plan_table_for_people(builtin_model_dir):
    result = runner.invoke(app, ["plan", "--profile", "qa"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Peak memory" in result.stdout and "micro_batch_size" in result.stdout


def test_plan_a_model_that_does_not_fit_exits_3_with_alternatives(tmp_path):
    folder = tmp_path / "llama-70b"
    folder.mkdir()
    folder.joinpath("config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "hidden_size": 8192, "num_hidden_layers": 80,
        "num_attention_heads": 64, "num_key_value_heads": 8, "intermediate_size": 28672, "vocab_size": 128256,
        "max_position_embeddings": 131072}))
    result = runner.invoke(app, ["plan", "--model", str(folder), "--json"])
    assert result.exit_code == 3
    data = json.loads(result.stdout)
    assert data["fits"] is False and data["alternatives"]
    assert data["config"]["base_model"] == str(folder.resolve())


@pytest.mark.parametrize(("args", "code", "text"), [
    (["--model", "nobody/no-such-model"], 4, "could not find the model"),
    (["--model", "not a model at all"], 4, "could not find the model"),
    (["--profile", "astrology"], 1, "no use-case profile"),
])
def test_bad_input_gives_a_clear_message_and_exit_code(args, code, text):
    result = runner.invoke(app, ["plan", *args])
    assert result.exit_code == code, result.output
    assert text in result.output and "Traceback" not in result.output


def test_a_folder_without_config_json_is_refused(tmp_path):
    result = runner.invoke(app, ["plan", "--model", str(tmp_path)])
    assert result.exit_code == 4
    assert "config.json" in result.output


@pytest.mark.slow
def test_plan_fits_the_dataset(builtin_model_dir):
    from studio.engine.datasets import sample_path

    result = runner.invoke(app, ["plan", "--dataset", str(sample_path("chatbot")), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["config"]["dataset_path"] == str(sample_path("chatbot").resolve())
    assert data["config"]["max_length"] < 512  # fitted to the sample's short conversations
    assert data["explanations"]["max_length"].startswith("99% of your examples")
    assert not any("No dataset" in warning for warning in data["warnings"])


def test_plan_with_an_unusable_dataset_exits_2(tmp_path, builtin_model_dir):
    bad = tmp_path / "empty.jsonl"
    bad.write_text("")
    result = runner.invoke(app, ["plan", "--dataset", str(bad)])
    assert result.exit_code == 2, result.output
    assert "cannot be used for training" in result.output
