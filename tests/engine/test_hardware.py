"""The hardware probe: a clean CPU profile without a driver, a 5-minute cache, and damaged caches replaced."""

from __future__ import annotations

import json
import time

import pytest

from studio.engine import hardware
from studio.engine.hardware import GpuInfo, HardwareProfile, cache_path, probe


def test_probe_on_this_machine_gives_a_complete_profile():
    profile = probe(use_cache=False)
    assert profile.cpu_cores >= 1
    assert 0 < profile.ram_available_mb <= profile.ram_total_mb
    assert profile.disk_free_mb > 0
    assert profile.device in {"cpu", "cuda", "mps"}
    assert profile.os and profile.cpu_name
    if not profile.gpus:  # the CI machines: no NVIDIA driver means a CPU profile, not an exception
        assert profile.device in {"cpu", "mps"} and not profile.cuda_available


def test_probe_writes_and_reuses_the_cache():
    first = probe()
    assert cache_path().is_file()
    data = json.loads(cache_path().read_text())
    data["profile"]["cpu_name"] = "from the cache"
    cache_path().write_text(json.dumps(data))
    assert probe().cpu_name == "from the cache"
    assert probe(use_cache=False).cpu_name == first.cpu_name


def test_a_stale_cache_is_measured_again():
    probe()
    data = json.loads(cache_path().read_text())
    data["profile"]["cpu_name"] = "stale"
    data["created"] = time.time() - hardware.CACHE_TTL_S - 1
    cache_path().write_text(json.dumps(data))
    assert probe().cpu_name != "stale"


@pytest.mark.parametrize("content", [
    "{not json", "[]", '{"format": 1, "created": 0}', '{"format": 1, "created": "x", "profile": {}}',
    '{"format": 1, "created": 1e18, "profile": {"os": "x", "cpu_cores": "two"}}',
])
def test_a_damaged_cache_is_replaced_and_reported(content):
    cache_path().write_text(content)
    profile = probe()
    assert profile.cpu_cores >= 1
    assert any("damaged" in note for note in profile.notes)
    json.loads(cache_path().read_text())  # rewritten as valid JSON
    assert probe().notes == []  # and the next read is clean


def test_profile_round_trips_through_a_dict():
    gpu = GpuInfo("NVIDIA A100-SXM4-80GB", 81920, 80000, (8, 0), "550.54", "12.4", True, 400.0)
    profile = HardwareProfile("Linux", "EPYC", 32, 256_000, 200_000, 1_000_000, [gpu], False, True, 150_000.0)
    data = json.loads(json.dumps(profile.to_dict()))
    assert data["device"] == "cuda"
    assert HardwareProfile.from_dict(data) == profile


def test_device_prefers_cuda_then_mps_then_cpu():
    gpu = GpuInfo("T4", 15360, 15000, (7, 5), "", "", False, 70.0)
    base = dict(os="x", cpu_name="y", cpu_cores=4, ram_total_mb=8000, ram_available_mb=6000, disk_free_mb=1)
    assert HardwareProfile(**base, gpus=[gpu], cuda_available=True).device == "cuda"
    assert HardwareProfile(**base, gpus=[gpu], cuda_available=False).device == "cpu"  # CPU-only torch
    assert HardwareProfile(**base, mps=True).device == "mps"
    assert HardwareProfile(**base).device == "cpu"


def test_throughput_probe_measures_something_plausible():
    gflops = hardware.measure_matmul_gflops("cpu", seconds=0.1)
    assert gflops is not None and 0.5 < gflops < 100_000


def test_measured_throughput_is_cached_with_the_profile():
    probe(use_cache=False)
    profile = probe(measure_throughput=True)  # the cached profile lacks a speed, so it is measured now
    assert profile.matmul_gflops
    assert probe().matmul_gflops == profile.matmul_gflops


def test_torch_cuda_build_is_read_without_importing_torch():
    import sys

    before = "torch" in sys.modules
    result = hardware.torch_cuda_build()
    assert result in {True, False, None}
    assert ("torch" in sys.modules) == before


@pytest.mark.gpu
@pytest.mark.skipif(not hardware._probe_gpus(), reason="needs an NVIDIA GPU")
def test_probe_reads_a_real_nvidia_gpu():
    profile = probe(use_cache=False, measure_throughput=True)
    assert profile.device == "cuda"
    gpu = profile.gpus[0]
    assert gpu.total_mb > 1000 and 0 < gpu.free_mb <= gpu.total_mb
    assert gpu.compute_capability >= (3, 5) and gpu.driver_version and gpu.cuda_version
    assert profile.matmul_gflops and profile.matmul_gflops > 1000
