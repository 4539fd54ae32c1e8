"""`studio cloud login/offers/train/status/stop --provider lambda` against the fake Lambda whose instances are
the real run agent (tests/engine/cloud/fake_lambda.py)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from studio.cli.main import app
from studio.engine.cloud.agent import TOKEN_ENV
from studio.engine.cloud.cloud_state import agent_token, load_launch, save_launch, write_launch
from studio.engine.cloud.lambda_api import LambdaMachines
from studio.engine.cloud.providers import MachineRequest, machine_name
from studio.engine.runs.registry import Registry
from tests.cli.test_cloud_train import _settings
from tests.engine.cloud.fake_lambda import GOOD_KEY, fake_lambda
from tests.engine.cloud.test_agent import _queued_run

runner = CliRunner()
A10 = "gpu_1x_a10"


@pytest.fixture
def lam(monkeypatch, tmp_path, builtin_model_dir):
    with fake_lambda(monkeypatch, tmp_path) as api:
        yield api


def invoke(args: list[str], **kwargs):
    return runner.invoke(app, ["cloud", *args], env={"COLUMNS": "200"}, **kwargs)


def test_login_and_offers_from_lambda(lam):
    result = invoke(["login", "lambda"], input=f"{GOOD_KEY}\n")
    assert result.exit_code == 0 and "Lambda API key saved" in result.output
    result = invoke(["offers", "--provider", "lambda", "--model", "builtin", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert listed["provider"] == "lambda"
    assert {item["gpu_id"] for item in listed["offers"]} == {"gpu_1x_a10", "gpu_1x_a100_sxm4"}
    assert all(item["provider"] == "lambda" and not item["spot"] for item in listed["offers"])
    table = invoke(["offers", "--provider", "lambda", "--model", "builtin"])
    assert "on Lambda, cheapest first" in table.output and "NVIDIA A10 PCIe" in table.output


def test_spot_is_refused_on_lambda_with_the_offers_there_are(lam, tiny_model_dir, tmp_path):
    invoke(["login", "lambda"], input=f"{GOOD_KEY}\n")
    result = invoke(["train", "--provider", "lambda", "--spot", "--config", str(_settings(tmp_path, tiny_model_dir))])
    assert result.exit_code != 0
    assert "No spot GPU" in result.output and "gpu_1x_a10 (on-demand, secure)" in result.output
    assert lam.launched == []


@pytest.mark.slow
def test_cloud_train_on_lambda_completes_and_its_instance_is_terminated(lam, tiny_model_dir, tmp_path):
    invoke(["login", "lambda"], input=f"{GOOD_KEY}\n")
    result = invoke(["train", "--provider", "lambda", "--gpu", A10, "--budget", "5", "--config",
                     str(_settings(tmp_path, tiny_model_dir)), "--name", "lambdy"])
    assert result.exit_code == 0, result.output
    assert "on a rented NVIDIA A10 PCIe (on-demand, secure, $0.75/h), budget $5.00" in result.output
    assert "Done." in result.output and "the machine is terminated" in result.output
    assert len(lam.launched) == 1 and lam.terminated == lam.launched and lam.billing() == []
    row = json.loads(invoke(["status", "--json"]).stdout)["runs"][0]
    assert (row["provider"], row["name"], row["machine"], row["outcome"]) == ("lambda", "lambdy", "none", "completed")
    versions = {record.version for record in Registry().list_runs() if record.name == "lambdy"}
    assert versions == {"1.0.0", "1.0.1"}


def test_cloud_stop_finds_an_instance_a_killed_runner_never_saved(lam, tiny_model_dir):
    invoke(["login", "lambda"], input=f"{GOOD_KEY}\n")
    run_dir = _queued_run(tiny_model_dir, max_steps=2)
    write_launch(run_dir, "lambda", A10, spot=False, cloud="secure", budget_usd=1.0, price_per_hour=0.75)
    request = MachineRequest(machine_name(run_dir.name), A10, False, "secure", 0.75,
                             {TOKEN_ENV: agent_token(run_dir.name)})
    instance = LambdaMachines().create(GOOD_KEY, request)
    launch = load_launch(run_dir)
    launch.state = "renting"  # killed before it saved the instance's id
    save_launch(run_dir, launch)
    assert json.loads(invoke(["status", "--json"]).stdout)["runs"][0]["machine"] == "renting"
    result = invoke(["stop", run_dir.name])
    assert result.exit_code == 0, result.output
    assert "The machine is terminated" in result.output
    assert lam.terminated == [instance] and lam.billing() == []
    assert load_launch(run_dir).state == "ended"
