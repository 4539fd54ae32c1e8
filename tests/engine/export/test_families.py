"""Five families end to end: plan, train 2 LoRA steps through the real worker, export merged HF, adapter and
an f16 GGUF with its Ollama Modelfile, and the GGUF verified against the merged model (next-token and
tokenization agreement, chat template embedded).

One tiny model per family (tests/families): Llama 3, Qwen2.5 (ChatML), Gemma 3, Mistral and Phi-3.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.engine.export.ollama import MODELFILE
from studio.engine.export.pipeline import export_run
from studio.engine.hardware import HardwareProfile
from studio.engine.models.facts import read_model_facts
from studio.engine.planner.plan import plan
from studio.engine.profiles import get_profile
from studio.engine.runs.folders import create_run_dir
from tests.engine.training.worker_runs import losses, read_events, run_worker_process, write_chat_jsonl
from tests.families import FAMILIES, FamilyModels

# A short run: two optimizer steps on short examples, one checkpoint, no held-out data.
OVERRIDES = {"max_steps": 2, "micro_batch_size": 2, "gradient_accumulation": 1, "max_length": 96,
             "learning_rate": 5e-3, "eval_fraction": 0.0, "checkpoint_every_steps": 2, "warmup_ratio": 0.0}


def _cpu() -> HardwareProfile:
    return HardwareProfile(os="Linux", cpu_name="Test CPU", cpu_cores=2, ram_total_mb=16384,
                           ram_available_mb=12000, disk_free_mb=200_000)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_trains_exports_and_its_gguf_is_verified(family_models: FamilyModels, name: str,
                                                        tmp_path: Path) -> None:
    model_dir = family_models.path(name)
    data = write_chat_jsonl(tmp_path / "chat.jsonl", rows=12)
    planned = plan(_cpu(), read_model_facts(model_dir), get_profile("chatbot"),
                   overrides={**OVERRIDES, "dataset_path": str(data)})
    assert planned.config.target_modules == "all-linear"
    run_dir = create_run_dir(planned.config, f"{name}-run", root=tmp_path / "runs")

    done = run_worker_process(run_dir)
    assert done.returncode == 0, done.stderr[-3000:]
    trained = losses(read_events(run_dir))
    assert sorted(trained) == [1, 2] and all(loss == loss for loss in trained.values())  # finite, not NaN

    merged = export_run(run_dir, "hf")
    assert json.loads((merged.out_dir / "config.json").read_text())["architectures"] == [FAMILIES[name].model_class]
    adapter = export_run(run_dir, "adapter")
    assert (adapter.out_dir / "adapter_model.safetensors").is_file()

    result = export_run(run_dir, "ollama", quant="f16")
    report = result.verification
    assert report is not None
    assert report.passed, report.summary()
    assert report.tokenizer_match and report.template_match
    assert report.tokenization_agreement == 1.0, report.tokenization_mismatches
    assert report.template_agreement == 1.0 and "Template agreement: 100%" in report.summary()
    modelfile = (result.out_dir / MODELFILE).read_text(encoding="utf-8")
    assert modelfile.startswith("FROM ./") and "TEMPLATE" in modelfile
    assert f'PARAMETER stop "{FAMILIES[name].end_of_turn}"' in modelfile
