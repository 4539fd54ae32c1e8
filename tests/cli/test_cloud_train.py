"""`studio cloud train`, `status` and `stop` against the fake RunPod whose pods are the real run agent
(tests/engine/cloud/fake_runpod.py), with the refusals said before anything is rented."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from studio.cli.main import app
from studio.engine.cloud import save_api_key
from studio.engine.cloud.cloud_state import load_launch, save_launch, write_launch
from studio.engine.cloud.providers import MachineRequest
from studio.engine.cloud.runpod_api import MAX_UPLOAD_BYTES, RunPodPods
from studio.engine.config import TrainConfig
from studio.engine.errors import StudioError
from studio.engine.runs.registry import Registry
from tests.cloud_server import LLAMA_70B
from tests.engine.cloud.fake_runpod import GOOD_KEY, fake_runpod_pods
from tests.engine.cloud.test_agent import SAMPLE, _queued_run

runner = CliRunner()
GPU = "NVIDIA GeForce RTX 4090"


@pytest.fixture
def runpod(monkeypatch, tmp_path, builtin_model_dir):
    with fake_runpod_pods(monkeypatch, tmp_path) as api:
        save_api_key("runpod", GOOD_KEY)
        yield api


def invoke(args: list[str]):
    return runner.invoke(app, ["cloud", *args], env={"COLUMNS": "200"})


def _settings(tmp_path: Path, tiny_model_dir: Path, **changes: object) -> Path:
    config = TrainConfig(base_model=str(tiny_model_dir), dataset_path=str(SAMPLE), micro_batch_size=2,
                         gradient_accumulation=1, max_length=64, eval_fraction=0.0, score_examples=False,
                         hardest_top_n=0, max_steps=4, checkpoint_every_steps=2, **changes)
    path = tmp_path / "settings.json"
    config.save(path)
    return path


def _mutations(api) -> list[str]:
    return [query for query in api.queries if "mutation" in query]


@pytest.mark.slow
def test_cloud_train_runs_on_a_rented_gpu_and_status_shows_it_terminated(runpod, tiny_model_dir, tmp_path):
    result = invoke(["train", "--gpu", GPU, "--budget", "5", "--config", str(_settings(tmp_path, tiny_model_dir)),
                     "--name", "cloudy"])
    assert result.exit_code == 0, result.output
    assert "on a rented NVIDIA GeForce RTX 4090 (on-demand, community, $0.34/h), budget $5.00" in result.output
    assert "Done." in result.output and "the machine is terminated" in result.output
    assert runpod.created and runpod.billing() == [] and runpod.terminated == runpod.created

    status = invoke(["status", "--json"])
    assert status.exit_code == 0, status.output
    rows = json.loads(status.stdout)["runs"]
    assert len(rows) == 1
    row = rows[0]
    assert (row["name"], row["status"], row["machine"], row["outcome"]) == ("cloudy", "completed", "none", "completed")
    assert 0 < row["cost_usd"] < 5 and row["pods"] == runpod.created
    versions = {record.version: record for record in Registry().list_runs() if record.name == "cloudy"}
    assert versions["1.0.1"].status == "completed" and versions["1.0.1"].parent_id == row["run_id"]
    table = invoke(["status"])
    assert "terminated" in table.output and "cloudy" in table.output


def test_a_budget_below_the_cheapest_estimate_is_refused_with_the_figure(runpod, tiny_model_dir, tmp_path):
    result = invoke(["train", "--gpu", GPU, "--budget", "0.0001", "--config",
                     str(_settings(tmp_path, tiny_model_dir))])
    assert result.exit_code != 0
    assert "A budget of $0.00 is below the estimated cost" in result.output
    assert "Raise the budget to at least $" in result.output
    assert _mutations(runpod) == [] and Registry().list_runs() == []


def test_a_dataset_too_large_to_send_is_refused_with_its_size(runpod, tiny_model_dir, tmp_path):
    data = tmp_path / "huge.jsonl"
    with data.open("wb") as handle:
        handle.truncate(MAX_UPLOAD_BYTES + 1024**3)  # sparse: 11 GB on paper
    result = invoke(["train", "--gpu", GPU, "--budget", "5", "--model", str(tiny_model_dir), "--dataset", str(data)])
    assert result.exit_code != 0
    assert "too large to send to RunPod: 11.0 GB" in result.output
    assert runpod.queries == [] and Registry().list_runs() == []


def test_a_model_that_fits_no_gpu_is_refused(runpod, tiny_model_dir, tmp_path):
    big = tmp_path / "llama-70b"
    big.mkdir()
    for path in tiny_model_dir.iterdir():  # the tokenizer, to measure the data with
        if path.is_file() and path.suffix != ".safetensors" and path.name != "config.json":
            shutil.copy(path, big / path.name)
    (big / "config.json").write_text(json.dumps(LLAMA_70B))
    settings = tmp_path / "settings.json"
    TrainConfig(base_model=str(big), dataset_path=str(SAMPLE), quantization="none").save(settings)
    result = invoke(["train", "--gpu", GPU, "--budget", "50", "--config", str(settings)])
    assert result.exit_code != 0
    assert "does not fit on any GPU RunPod offers" in result.output
    assert _mutations(runpod) == []


def test_a_gpu_that_is_not_offered_is_named_with_the_ones_that_are(runpod, tiny_model_dir, tmp_path):
    result = invoke(["train", "--gpu", "NVIDIA H100", "--config", str(_settings(tmp_path, tiny_model_dir))])
    assert result.exit_code != 0
    assert "No on-demand NVIDIA H100" in result.output and GPU in result.output
    assert _mutations(runpod) == []


def test_cloud_stop_terminates_a_machine_left_without_its_runner(runpod, tiny_model_dir):
    run_dir = _queued_run(tiny_model_dir, max_steps=2)
    write_launch(run_dir, "runpod", GPU, spot=False, cloud="community", budget_usd=1.0, price_per_hour=0.34)
    pod = RunPodPods().create(GOOD_KEY, MachineRequest("studio-test", GPU, False, "community", 0.34, {}))
    launch = load_launch(run_dir)
    launch.pod_id, launch.state, launch.pods = pod, "running", [pod]
    save_launch(run_dir, launch)
    assert json.loads(invoke(["status", "--json"]).stdout)["runs"][0]["machine"] == "rented"
    with pytest.raises(StudioError) as caught:  # a new launch would leave that machine billing
        write_launch(run_dir, "runpod", GPU, spot=False, cloud="community", budget_usd=1.0, price_per_hour=0.34)
    assert caught.value.code == "cloud_run_has_machine" and load_launch(run_dir).pod_id == pod
    result = invoke(["stop", run_dir.name])
    assert result.exit_code == 0, result.output
    assert "The machine is terminated" in result.output
    assert runpod.terminated == [pod] and runpod.billing() == []
    assert load_launch(run_dir).pod_id is None and Registry().get(run_dir.name).status == "stopped"
    assert "nothing bills" in invoke(["stop", run_dir.name]).output
