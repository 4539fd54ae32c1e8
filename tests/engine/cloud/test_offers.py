"""Offers from the provider's live API (a fake RunPod on 127.0.0.1), filtered by the planner's memory
estimate, with time and cost intervals, the budget cap and the plain refusals."""

from __future__ import annotations

import subprocess
import sys

import pytest

from studio.engine.cloud import budget_cap, check_budget, offers, save_api_key
from studio.engine.cloud.offers import BUDGET_FACTOR, SETUP_S, gpu_hardware
from studio.engine.cloud.runpod_api import MAX_UPLOAD_BYTES
from studio.engine.errors import StudioError
from studio.engine.models.facts import facts_from_config
from studio.engine.planner import estimate, plan
from studio.engine.profiles import get_profile
from tests.cloud_server import GOOD_KEY, LLAMA_8B, LLAMA_70B, FakeGpu, closed_port_url, fake_runpod

PROFILE = get_profile(None)
LLAMA = facts_from_config(LLAMA_8B, name="meta-llama/Llama-3.1-8B-Instruct", has_chat_template=True,
                          size_on_disk_mb=16_000)
BIG = facts_from_config(LLAMA_70B, name="meta-llama/Llama-3.1-70B-Instruct", has_chat_template=True)


@pytest.fixture
def runpod(monkeypatch):
    with fake_runpod(monkeypatch) as api:
        save_api_key("runpod", GOOD_KEY)
        yield api


def test_offers_fit_the_planned_run_and_come_from_the_live_list(runpod):
    report = offers("runpod", LLAMA, PROFILE, overrides={"quantization": "none"})
    listed = {item.offer.gpu.id for item in report.estimates}
    for gpu in runpod.gpus:
        hardware = gpu_hardware(_gpu_type(gpu))
        fits = plan(hardware, LLAMA, PROFILE, overrides={"quantization": "none"}).fits
        assert (gpu.id in listed) == fits, gpu.id
    assert "NVIDIA GeForce RTX 3070" not in listed  # 16 GB of bf16 weights do not fit in 8 GB
    assert "NVIDIA A100 80GB PCIe" in listed
    for item in report.estimates:
        assert item.peak_memory_mb.expected <= item.offer.gpu.vram_gb * 1024
        assert item.config.quantization == "none"
    # Every price the provider lists for a fitting GPU is an offer: on-demand and spot, both clouds.
    a100 = {(i.offer.price.cloud, i.offer.price.spot, i.offer.price.per_hour) for i in report.estimates
            if i.offer.gpu.id == "NVIDIA A100 80GB PCIe"}
    assert a100 == {("secure", False, 1.64), ("community", False, 1.19), ("secure", True, 0.82)}
    # Prices were asked only for the GPUs that fit.
    asked = [q for q in runpod.queries if "input:" in q]
    assert len(asked) == len(listed)


def _gpu_type(gpu):
    from studio.engine.cloud.providers import GpuType

    return GpuType(id=gpu.id, name=gpu.id, vram_gb=float(gpu.vram_gb))


def test_each_offer_has_the_planners_time_and_cost_with_an_interval(runpod):
    report = offers("runpod", LLAMA, PROFILE)
    costs = [item.cost.expected for item in report.estimates]
    assert costs == sorted(costs)  # cheapest first
    for item in report.estimates:
        planned = estimate(item.config, gpu_hardware(item.offer.gpu), LLAMA, None)
        time = item.total_time_s
        assert time.expected == pytest.approx(planned.total_time_s.expected + SETUP_S.expected)
        assert time.low < time.expected < time.high
        assert item.cost.expected == pytest.approx(time.expected * item.offer.price.per_hour / 3600)
        assert item.cost.low < item.cost.expected < item.cost.high
    by_gpu = {item.offer.gpu.id: item.total_time_s.expected for item in report.estimates}
    assert by_gpu["NVIDIA A100 80GB PCIe"] < by_gpu["NVIDIA GeForce RTX 4090"]  # the faster GPU is faster


def test_the_budget_defaults_to_one_and_a_half_times_the_estimate_and_refuses_less_than_the_cheapest(runpod):
    report = offers("runpod", LLAMA, PROFILE)
    cheapest = report.cheapest
    assert budget_cap(cheapest) == pytest.approx(BUDGET_FACTOR * cheapest.cost.expected, abs=0.01)
    assert budget_cap(cheapest, 100.0) == 100.0
    assert check_budget(report, 1e6) == report.estimates
    affordable = check_budget(report, cheapest.cost.expected)
    assert affordable and all(item.cost.expected <= cheapest.cost.expected for item in affordable)

    too_low = cheapest.cost.expected / 2
    with pytest.raises(StudioError) as caught:
        check_budget(report, too_low)
    assert caught.value.code == "cloud_budget_too_low"
    assert f"${too_low:.2f}" in caught.value.what
    assert f"${cheapest.cost.expected:.2f}" in caught.value.what  # the figure to beat
    with pytest.raises(StudioError):
        budget_cap(cheapest, too_low)


def test_a_model_that_fits_no_offered_gpu_is_refused_with_qlora_and_a_smaller_model(runpod):
    with pytest.raises(StudioError) as caught:
        offers("runpod", BIG, PROFILE, overrides={"quantization": "none"})
    error = caught.value
    assert error.code == "cloud_no_fitting_gpu"
    assert "Llama-3.1-70B" in error.what
    assert "80 GB" in error.why
    assert any("QLoRA" in action for action in error.actions)
    assert any("smaller model" in action for action in error.actions)
    assert not [q for q in runpod.queries if "input:" in q]  # no price asked for GPUs it cannot use


def test_without_a_fixed_method_the_planner_falls_back_to_qlora_where_only_4bit_fits(runpod):
    report = offers("runpod", BIG, PROFILE)
    assert report.estimates
    assert {item.config.quantization for item in report.estimates} == {"4bit"}
    assert {item.offer.gpu.vram_gb for item in report.estimates} <= {48.0, 80.0}


def test_a_wrong_key_is_said_plainly_and_creates_nothing(runpod):
    with pytest.raises(StudioError) as caught:
        offers("runpod", LLAMA, PROFILE, api_key="rpa_wrong")
    assert caught.value.code == "cloud_key_refused"
    assert "RunPod refused the API key" in caught.value.what
    assert "Nothing was created" in caught.value.why
    assert not [q for q in runpod.queries if "mutation" in q]


def test_no_saved_key_says_how_to_save_one(monkeypatch):
    with fake_runpod(monkeypatch) as api, pytest.raises(StudioError) as caught:
        offers("runpod", LLAMA, PROFILE)
    assert caught.value.code == "cloud_no_key"
    assert any("studio cloud login runpod" in action for action in caught.value.actions)
    assert api.queries == []


def test_an_unreachable_provider_gives_the_offline_message(runpod, monkeypatch):
    monkeypatch.setenv("RUNPOD_API_BASE_URL", closed_port_url())
    with pytest.raises(StudioError) as caught:
        offers("runpod", LLAMA, PROFILE)
    assert caught.value.code == "cloud_offline"
    assert caught.value.what == "Studio cannot reach RunPod right now."
    assert "Check your internet connection" in caught.value.actions[0]


def test_a_dataset_too_large_to_upload_is_refused_with_its_size(runpod, tmp_path):
    data = tmp_path / "huge.jsonl"
    with data.open("wb") as handle:
        handle.truncate(MAX_UPLOAD_BYTES + 1024**3)  # sparse: 11 GB on paper, nothing on disk
    with pytest.raises(StudioError) as caught:
        offers("runpod", LLAMA, PROFILE, dataset=data)
    assert caught.value.code == "cloud_dataset_too_large"
    assert "11.0 GB" in caught.value.what
    assert runpod.queries == []  # refused before asking the provider anything


def test_a_gpu_type_gone_between_listing_and_pricing_is_a_provider_error(runpod):
    runpod.gone.add("NVIDIA A100 80GB PCIe")
    with pytest.raises(StudioError) as caught:
        offers("runpod", LLAMA, PROFILE)
    assert caught.value.code == "cloud_provider_error"
    assert "No GPU found" in caught.value.why


def test_fitting_gpus_with_no_machine_free_are_said_to_be_unavailable(runpod):
    runpod.gpus = [FakeGpu("NVIDIA A100 80GB PCIe", "A100 PCIe", 80, None, None)]  # listed, no price now
    with pytest.raises(StudioError) as caught:
        offers("runpod", LLAMA, PROFILE)
    assert caught.value.code == "cloud_none_available"
    assert "can be rented right now" in caught.value.what


def test_studio_imports_no_cloud_sdk_until_a_cloud_feature_is_used():
    code = ("import sys, studio.engine.cloud, studio.cli.main; "
            "print(sorted(m for m in ('runpod', 'together') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_without_the_cloud_extra_studio_says_what_to_install(runpod, monkeypatch):
    monkeypatch.setitem(sys.modules, "runpod", None)  # as if not installed
    with pytest.raises(StudioError) as caught:
        offers("runpod", LLAMA, PROFILE)
    assert caught.value.code == "cloud_sdk_missing"
    assert any("studio[cloud]" in action for action in caught.value.actions)


def test_providers_not_built_yet_are_named_plainly(runpod):
    with pytest.raises(StudioError) as caught:
        offers("together", LLAMA, PROFILE)
    assert caught.value.code == "cloud_provider_not_ready"
    with pytest.raises(StudioError) as caught:
        offers("vast", LLAMA, PROFILE)
    assert caught.value.code == "cloud_unknown_provider"
