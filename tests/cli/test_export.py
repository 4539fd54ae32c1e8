"""`studio export`: results on stdout, plain errors and non-zero exits on failure."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from studio.cli.main import app
from studio.engine.config import TrainConfig

runner = CliRunner()


def make_run(tmp_path: Path, tiny_model_dir: Path, trained: bool = True) -> Path:
    """A finished run on the tiny model: config.json and a real PEFT adapter in final/adapter.

    Untrained, the adapter is what PEFT starts from (B = 0): it changes nothing.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    run_dir = tmp_path / "cli-run"
    TrainConfig(base_model=str(tiny_model_dir)).save(run_dir / "config.json")
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=not trained))
    model.save_pretrained(run_dir / "final" / "adapter")
    return run_dir


def test_unknown_run_exits_non_zero_with_a_plain_message():
    result = runner.invoke(app, ["export", "no-such-run", "--format", "hf"])
    assert result.exit_code == 1
    assert "There is no run called 'no-such-run'" in result.output
    assert "Traceback" not in result.output


def test_adapter_export_prints_json_and_writes_a_complete_folder(tmp_path, tiny_model_dir):
    run_dir = make_run(tmp_path, tiny_model_dir)
    out = tmp_path / "out"
    result = runner.invoke(app, ["export", str(run_dir), "--format", "adapter", "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["format"] == "adapter" and data["out_dir"] == str(out)
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= {p.name for p in out.iterdir()}


def test_missing_adapter_exits_non_zero_and_writes_nothing(tmp_path, tiny_model_dir):
    run_dir = make_run(tmp_path, tiny_model_dir)
    shutil.rmtree(run_dir / "final")
    result = runner.invoke(app, ["export", str(run_dir), "--format", "hf"])
    assert result.exit_code == 1
    assert "nothing trained to use yet" in result.output
    assert not (run_dir / "exports").exists()


def test_bad_quantization_is_refused_before_any_work(tmp_path, tiny_model_dir):
    run_dir = make_run(tmp_path, tiny_model_dir)
    result = runner.invoke(app, ["export", str(run_dir), "--format", "gguf", "--quant", "Q9"])
    assert result.exit_code == 1
    assert "not a quantization" in result.output


def test_an_adapter_gguf_of_an_untrained_adapter_fails_verification_and_says_why(tmp_path, tiny_model_dir):
    run_dir = make_run(tmp_path, tiny_model_dir, trained=False)
    out = tmp_path / "adapter-gguf"
    result = runner.invoke(app, ["export", str(run_dir), "--format", "gguf-adapter", "--out", str(out), "--json"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.stdout)
    report = data["verification"]
    assert data["format"] == "gguf-adapter" and data["ok"] is False and report["adapter_effect"] == 0.0
    assert "changes nothing" in report["recommendation"]
    assert (out / report["adapter_file"]).is_file() and (out / "verification.json").is_file()  # kept
    assert Path(data["base_gguf"]).is_file()


def test_adapter_gguf_refuses_a_quantization_in_plain_words(tmp_path, tiny_model_dir):
    run_dir = make_run(tmp_path, tiny_model_dir)
    result = runner.invoke(app, ["export", str(run_dir), "--format", "gguf-adapter", "--quant", "Q4_K_M"])
    assert result.exit_code == 1
    assert "cannot be made as Q4_K_M" in result.output and "export the merged model" in result.output
    assert "Traceback" not in result.output and not (run_dir / "exports").exists()


def test_hub_login_takes_no_token_on_the_command_line(monkeypatch):
    saved: list[str] = []
    monkeypatch.setattr("studio.engine.export.hub_upload.save_token", saved.append)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    refused = CliRunner().invoke(app, ["hub-login", "--token", "hf_secret"])
    assert refused.exit_code != 0 and saved == []
    typed = CliRunner().invoke(app, ["hub-login"], input="hf_typed\n")
    assert typed.exit_code == 0, typed.output
    assert "hf_typed" not in typed.output  # the prompt hides what is typed
    monkeypatch.setenv("HF_TOKEN", "hf_from_env")
    assert CliRunner().invoke(app, ["hub-login"]).exit_code == 0
    assert saved == ["hf_typed", "hf_from_env"]
