"""`studio cloud login` and `studio cloud offers` against a fake RunPod on 127.0.0.1, through the real SDK."""

from __future__ import annotations

import json

import keyring
import pytest
from typer.testing import CliRunner

from studio.cli.main import app
from studio.engine.cloud.keys import KEYRING_USER, keyring_service
from tests.cloud_server import GOOD_KEY, closed_port_url, fake_runpod

runner = CliRunner()


@pytest.fixture
def runpod(monkeypatch, builtin_model_dir):
    with fake_runpod(monkeypatch) as api:
        yield api


def invoke(args: list[str], **kwargs):
    return runner.invoke(app, ["cloud", *args], env={"COLUMNS": "200"}, **kwargs)


def login(key: str = GOOD_KEY):
    return invoke(["login", "runpod"], input=f"{key}\n")


def test_login_keeps_the_key_in_the_keyring_and_never_shows_it(runpod):
    result = login()
    assert result.exit_code == 0, result.output
    assert keyring.get_password(keyring_service("runpod"), KEYRING_USER) == GOOD_KEY
    assert GOOD_KEY not in result.output  # hidden prompt, not echoed
    assert "saved in the system keyring" in result.output


def test_offers_json_lists_the_fitting_offers_cheapest_first_with_intervals(runpod):
    login()
    result = invoke(["offers", "--model", "builtin", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["provider"] == "runpod"
    listed = data["offers"]
    # The 135M built-in model fits every GPU; every price RunPod lists for them is an offer.
    assert {item["gpu_id"] for item in listed} == {gpu.id for gpu in runpod.gpus}
    prices = [(g.secure, g.community, g.secure_spot, g.community_spot) for g in runpod.gpus]
    assert len(listed) == sum(price is not None for row in prices for price in row)
    costs = [item["cost"]["expected"] for item in listed]
    assert costs == sorted(costs)
    for item in listed:
        assert item["cost"]["low"] < item["cost"]["expected"] < item["cost"]["high"]
        assert item["total_time_s"]["low"] < item["total_time_s"]["expected"] < item["total_time_s"]["high"]
        assert item["default_budget"] == pytest.approx(1.5 * item["cost"]["expected"], abs=0.01)
        assert item["peak_memory_mb"]["expected"] < item["vram_gb"] * 1024
    assert {(item["spot"], item["cloud"]) for item in listed} == {
        (False, "secure"), (False, "community"), (True, "secure"), (True, "community")}


def test_offers_fit_their_time_to_the_dataset(runpod, tmp_path):
    login()
    data = tmp_path / "train.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"What is {i} plus {i}?"},
                          {"role": "assistant", "content": f"{i} plus {i} is {2 * i}."}]} for i in range(60)]
    data.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    assumed = json.loads(invoke(["offers", "--model", "builtin", "--json"]).stdout)["offers"]
    result = invoke(["offers", "--model", "builtin", "--dataset", str(data), "--json"])
    assert result.exit_code == 0, result.output
    fitted = json.loads(result.stdout)["offers"]
    # 60 short examples train faster than the 1000 assumed without a dataset.
    assert fitted[0]["total_time_s"]["expected"] < assumed[0]["total_time_s"]["expected"]


def test_offers_table_for_people(runpod):
    login()
    result = invoke(["offers", "--model", "builtin"])
    assert result.exit_code == 0, result.output
    assert "cheapest first" in result.output
    assert "NVIDIA GeForce RTX 4090" in result.output
    assert "spot, community" in result.output


def test_a_budget_below_the_cheapest_estimate_is_refused_with_the_figure(runpod):
    login()
    result = invoke(["offers", "--model", "builtin", "--budget", "0.001"])
    assert result.exit_code == 1
    assert "A budget of $0.00 is below the estimated cost" in result.output
    assert "Traceback" not in result.output


def test_a_budget_keeps_only_the_offers_within_it(runpod):
    login()
    everything = json.loads(invoke(["offers", "--model", "builtin", "--json"]).stdout)["offers"]
    third, fourth = (item["cost"]["expected"] for item in everything[2:4])
    assert third < fourth
    cap = (third + fourth) / 2  # clear of the rounding in the JSON
    result = invoke(["offers", "--model", "builtin", "--json", "--budget", str(cap)])
    assert result.exit_code == 0, result.output
    within = json.loads(result.stdout)["offers"]
    assert within == [item for item in everything if item["cost"]["expected"] <= cap]
    assert len(within) < len(everything)


def test_offers_without_a_key_wrong_key_and_unreachable_provider(runpod, monkeypatch):
    result = invoke(["offers", "--model", "builtin"])
    assert result.exit_code == 1
    assert "No RunPod API key is saved" in result.output
    assert "studio cloud login runpod" in result.output

    login("rpa_wrong")
    result = invoke(["offers", "--model", "builtin"])
    assert result.exit_code == 1
    assert "RunPod refused the API key" in result.output

    login()
    monkeypatch.setenv("RUNPOD_API_BASE_URL", closed_port_url())
    result = invoke(["offers", "--model", "builtin"])
    assert result.exit_code == 1
    assert "Studio cannot reach RunPod right now" in result.output
