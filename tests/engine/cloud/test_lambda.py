"""Lambda end to end: offers from a fake Lambda Cloud API on 127.0.0.1 (tests/engine/cloud/fake_lambda.py)
through Studio's own httpx client, and runs whose instances are the real run agent, reached on the address
the instance reports once it has booted. Nothing here reaches the network."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from studio.engine.cloud import offers, save_api_key
from studio.engine.cloud.agent import TOKEN_ENV
from studio.engine.cloud.cloud_state import agent_token, load_launch, save_launch, write_launch
from studio.engine.cloud.connect import get_machines
from studio.engine.cloud.lambda_api import MIN_INTERVAL_S, LambdaMachines
from studio.engine.cloud.providers import AGENT_PORT, MachineRequest, machine_name
from studio.engine.cloud.release import release_machine
from studio.engine.errors import StudioError
from studio.engine.runs.registry import Registry
from tests.cloud_server import closed_port_url
from tests.engine.cloud.fake_lambda import GOOD_KEY, FakeLambda, fake_lambda
from tests.engine.cloud.test_agent import _queued_run
from tests.engine.cloud.test_offers import LLAMA, PROFILE
from tests.engine.cloud.test_runner import Runner, _stderr

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="the bundle's launch script is a bash script")

A10 = "gpu_1x_a10"


@pytest.fixture
def lam(monkeypatch, tmp_path) -> FakeLambda:
    with fake_lambda(monkeypatch, tmp_path) as api:
        save_api_key("lambda", GOOD_KEY)
        yield api


def _lambda_run(tiny_model_dir: Path, *, price: float = 0.75, budget: float = 5.0, **settings: object) -> Path:
    run_dir = _queued_run(tiny_model_dir, **settings)
    write_launch(run_dir, "lambda", A10, spot=False, cloud="secure", budget_usd=budget, price_per_hour=price)
    return run_dir


def test_offers_are_the_one_gpu_types_with_capacity_on_demand(lam):
    report = offers("lambda", LLAMA, PROFILE)
    assert report.provider == "lambda"
    by_id = {item.offer.gpu.id: item for item in report.estimates}
    # 8x types are left out (one GPU is planned for); the H100 has no capacity anywhere, so no offer.
    assert set(by_id) == {"gpu_1x_a10", "gpu_1x_a100_sxm4"}
    a10 = by_id["gpu_1x_a10"].offer
    assert a10.provider == "lambda" and a10.gpu.name == "NVIDIA A10 PCIe" and a10.gpu.vram_gb == 24.0
    assert (a10.price.per_hour, a10.price.spot, a10.price.cloud) == (0.75, False, "secure")
    assert by_id["gpu_1x_a100_sxm4"].offer.gpu.name == "NVIDIA A100 SXM4"
    assert all(not item.offer.price.spot for item in report.estimates)
    assert "GET /instance-types" in lam.requests


def test_lambdas_rate_limit_is_waited_out_and_requests_are_spaced(lam):
    lam.too_many = 2
    started = time.monotonic()
    report = offers("lambda", LLAMA, PROFILE)
    assert report.estimates and lam.too_many == 0
    assert lam.requests.count("GET /instance-types") == 3  # two 429s, then the one listing for types and prices
    assert time.monotonic() - started >= 2 * MIN_INTERVAL_S
    lam.too_many = 100
    with pytest.raises(StudioError) as caught:
        offers("lambda", LLAMA, PROFILE)
    assert caught.value.code == "cloud_provider_error" and "fewer requests" in caught.value.why


def test_a_wrong_key_and_an_unreachable_api_are_said_plainly(lam, monkeypatch):
    with pytest.raises(StudioError) as caught:
        offers("lambda", LLAMA, PROFILE, api_key="secret_wrong")
    assert caught.value.code == "cloud_key_refused" and caught.value.what == "Lambda refused the API key."
    monkeypatch.setenv("LAMBDA_API_BASE_URL", closed_port_url())
    with pytest.raises(StudioError) as caught:
        offers("lambda", LLAMA, PROFILE)
    assert caught.value.code == "cloud_offline" and caught.value.what == "Studio cannot reach Lambda right now."


@pytest.mark.slow
def test_a_rented_run_completes_into_the_library_and_its_instance_is_terminated(lam, tiny_model_dir):
    lam.boot_s = 2.0  # no IP for a while: the runner reads the agent's address once the instance has one
    run_dir = _lambda_run(tiny_model_dir, max_steps=4, checkpoint_every_steps=2)
    runner = Runner(run_dir)
    outcome = runner.wait()
    assert (outcome.status, outcome.exit_code) == ("completed", 0), _stderr(run_dir)
    kinds = [event.kind for event in runner.told()]
    assert kinds[0] == "started" and kinds[-1] == "completed" and "checkpoint" in kinds
    assert any(event.kind == "heartbeat" and "on Lambda" in (event.message or "") for event in runner.events)

    launch = load_launch(run_dir)
    assert launch.outcome == "completed" and launch.pod_id is None and launch.agent_url is None
    record = Registry().get(launch.imported_run_id)
    assert record is not None and record.status == "completed" and record.version == "1.0.1"
    assert lam.launched == launch.pods and len(launch.pods) == 1
    assert lam.terminated == launch.pods and lam.billing() == []

    # One launch, in the region with capacity, with the account's SSH key and the agent in its user data.
    sent = lam.launches[0]
    assert sent["region_name"] == "us-east-1" and sent["instance_type_name"] == A10
    assert sent["ssh_key_names"] == ["my-laptop"] and sent["name"] == machine_name(run_dir.name)
    assert "studio.engine.cloud.agent" in sent["user_data"] and f"--port {AGENT_PORT}" in sent["user_data"]
    assert f"export {TOKEN_ENV}={agent_token(run_dir.name)}" in sent["user_data"]
    # The agent's port was opened, and the rules already there were kept.
    assert {"protocol": "tcp", "port_range": [22, 22], "source_network": "0.0.0.0/0", "description": "SSH"} \
        in lam.firewall
    assert any(rule["port_range"] == [AGENT_PORT, AGENT_PORT] for rule in lam.firewall)


@pytest.mark.slow
def test_the_budget_cap_stops_the_run_and_terminates_the_instance(lam, tiny_model_dir):
    run_dir = _lambda_run(tiny_model_dir, price=80.0, budget=1.0, max_steps=5000, checkpoint_every_steps=1000)
    runner = Runner(run_dir)
    outcome = runner.wait()
    assert (outcome.status, outcome.exit_code) == ("stopped", 130), _stderr(run_dir)
    told = runner.told()
    assert any(event.kind == "anomaly" and event.anomaly == "cloud_budget_reached" for event in told)
    assert told[-1].kind == "stopped" and told[-1].reason == "budget" and told[-1].checkpoint_path
    launch = load_launch(run_dir)
    assert launch.outcome == "budget" and launch.pod_id is None
    assert lam.terminated == launch.pods and lam.billing() == []


def test_a_wrong_key_fails_the_run_before_anything_is_launched(lam, tiny_model_dir):
    save_api_key("lambda", "secret_wrong")
    run_dir = _lambda_run(tiny_model_dir, max_steps=2)
    runner = Runner(run_dir)
    outcome = runner.wait(60)
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    error = runner.told()[-1]
    assert error.kind == "error" and error.code == "cloud_key_refused"
    assert error.message == "Lambda refused the API key."
    assert lam.launched == [] and load_launch(run_dir).pods == []


def test_an_unreachable_api_gives_the_offline_message(lam, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("LAMBDA_API_BASE_URL", closed_port_url())
    run_dir = _lambda_run(tiny_model_dir, max_steps=2)
    runner = Runner(run_dir)
    outcome = runner.wait(60)
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    error = runner.told()[-1]
    assert error.code == "cloud_offline" and error.message == "Studio cannot reach Lambda right now."
    assert lam.launched == []


def test_an_account_without_an_ssh_key_is_told_to_add_one(lam, tiny_model_dir):
    lam.ssh_keys = []
    run_dir = _lambda_run(tiny_model_dir, max_steps=2)
    runner = Runner(run_dir)
    outcome = runner.wait(60)
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    error = runner.told()[-1]
    assert error.code == "cloud_no_ssh_key" and "SSH key" in error.message
    assert any("Add an SSH key" in action for action in error.actions)
    assert lam.launched == [] and Registry().get(run_dir.name).status == "failed"


def _launched_then_lost(lam: FakeLambda, tiny_model_dir: Path) -> tuple[Path, str]:
    """A runner killed between Lambda's answer to the launch and saving it: an instance named for the run is
    up, and cloud.json says "renting" with no machine."""
    run_dir = _lambda_run(tiny_model_dir, max_steps=4, checkpoint_every_steps=2)
    request = MachineRequest(name=machine_name(run_dir.name), gpu_id=A10, spot=False, cloud="secure",
                             bid_per_gpu=0.75, env={TOKEN_ENV: agent_token(run_dir.name)})
    instance_id = LambdaMachines().create(GOOD_KEY, request)
    launch = load_launch(run_dir)
    launch.state = "renting"
    save_launch(run_dir, launch)
    return run_dir, instance_id


@pytest.mark.slow
def test_a_runner_killed_while_renting_finds_its_instance_by_name_and_trains_on_it(lam, tiny_model_dir):
    run_dir, instance_id = _launched_then_lost(lam, tiny_model_dir)
    runner = Runner(run_dir)
    outcome = runner.wait()
    assert (outcome.status, outcome.exit_code) == ("completed", 0), _stderr(run_dir)
    assert any(event.kind == "heartbeat" and "lost track" in (event.message or "") for event in runner.events)
    assert lam.launched == [instance_id]  # no second instance
    assert lam.terminated == [instance_id] and lam.billing() == []
    assert load_launch(run_dir).pods == [instance_id]


def test_release_finds_and_terminates_an_instance_a_killed_runner_never_saved(lam, tiny_model_dir):
    run_dir, instance_id = _launched_then_lost(lam, tiny_model_dir)
    assert get_machines("lambda").find(GOOD_KEY, machine_name(run_dir.name))[0].id == instance_id
    spent = release_machine(run_dir)
    assert spent is not None and spent >= 0
    assert lam.terminated == [instance_id] and lam.billing() == []
    launch = load_launch(run_dir)
    assert launch.state == "ended" and launch.pods == [instance_id]
    assert release_machine(run_dir) is None  # nothing left


def test_a_launch_that_fails_after_creating_an_instance_leaves_nothing_billing(lam, tiny_model_dir):
    lam.launch_fails_after = True
    run_dir = _lambda_run(tiny_model_dir, max_steps=2)
    runner = Runner(run_dir)
    outcome = runner.wait(60)
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    assert runner.told()[-1].code == "cloud_provider_error"
    assert len(lam.launched) == 1 and lam.terminated == lam.launched and lam.billing() == []
    launch = load_launch(run_dir)
    assert launch.state == "ended" and launch.pods == lam.launched
