"""The GPU check's decisions, tested where there is no GPU; and on this machine it says it did not run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "scripts" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    del sys.modules["gpu_check"]


def _facts(gpu_check, **overrides):
    return gpu_check.Facts(**{"cuda": True, "gpu_name": "NVIDIA H100", "unsloth": True, "bitsandbytes": True,
                              "local_model": None, **overrides})


def test_without_cuda_nothing_runs_and_it_says_so(gpu_check, tmp_path):
    steps, skipped = gpu_check.plan(_facts(gpu_check, cuda=False, gpu_name=None), "python", tmp_path)
    assert steps == [] and skipped[0].detail == "no NVIDIA GPU with CUDA on this machine"


def test_a_full_gpu_machine_runs_every_step_within_eight_minutes(gpu_check, tmp_path):
    model = tmp_path / "Qwen2.5-0.5B-Instruct"
    steps, skipped = gpu_check.plan(_facts(gpu_check, local_model=model), "python", tmp_path)
    names = [step.name for step in steps]
    assert names[0] == "gpu-marked tests" and names[-1].startswith("throughput")
    assert sum("Unsloth LoRA" in name for name in names) == 2 and sum("4-bit QLoRA" in name for name in names) == 2
    assert any("Qwen2.5-0.5B-Instruct" in name for name in names) and skipped == []
    assert sum(step.limit_s for step in steps) <= 8 * 60


def test_missing_pieces_are_skipped_with_the_reason(gpu_check, tmp_path):
    steps, skipped = gpu_check.plan(_facts(gpu_check, unsloth=False, bitsandbytes=False), "python", tmp_path)
    assert [step.name for step in steps] == ["gpu-marked tests", "throughput: Unsloth vs transformers + PEFT"]
    reasons = {outcome.name: outcome.detail for outcome in skipped}
    assert reasons["Unsloth LoRA, builtin"] == "unsloth is not installed"
    assert reasons["4-bit QLoRA, builtin"] == "bitsandbytes is not installed"
    assert "STUDIO_GPU_CHECK_MODEL" in reasons["0.5-1.5B model runs"]


def test_the_training_configs_are_real_settings(gpu_check, tmp_path):
    from studio.engine.config import TrainConfig

    facts = _facts(gpu_check, unsloth=False)
    gpu_check.write_configs(facts, tmp_path, tmp_path / "chats.jsonl")
    lora = TrainConfig.from_dict(json.loads((tmp_path / "builtin-lora.json").read_text()))
    qlora = TrainConfig.from_dict(json.loads((tmp_path / "builtin-qlora.json").read_text()))
    assert (lora.backend, lora.max_steps, qlora.method) == ("hf", 30, "qlora")


def test_a_step_past_the_budget_is_not_run(gpu_check):
    outcomes = gpu_check.run_steps([gpu_check.Step("quick", [sys.executable, "-c", "pass"], 30)], budget_s=5)
    assert outcomes[0].status == "not run" and "budget" in outcomes[0].detail


def test_on_this_machine_the_check_says_it_did_not_run(gpu_check, tmp_path, capsys):
    if gpu_check.read_facts().cuda:
        pytest.skip("this machine has a GPU: the check would really run")
    assert gpu_check.main(["--out", str(tmp_path)]) == 0
    assert "The GPU check did not run: nothing here was verified on a GPU." in capsys.readouterr().out
    report = json.loads((tmp_path / "gpu-check.json").read_text())
    assert report["cuda"] is False and report["outcomes"][0]["status"] == "not run"
