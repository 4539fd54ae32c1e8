"""`studio doctor`: readable for people, stable JSON for scripts, and honest about a machine without a GPU."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from studio.cli.doctor import findings
from studio.cli.main import app
from studio.engine.hardware import GpuInfo, HardwareProfile, cache_path

runner = CliRunner()


def _cpu(**changes) -> HardwareProfile:
    profile = HardwareProfile("Linux", "cpu", 8, 32_000, 20_000, 100_000)
    for name, value in changes.items():
        setattr(profile, name, value)
    return profile


def test_doctor_json_has_the_documented_shape():
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"hardware", "device", "backend", "findings", "packages", "studio_home", "notes"}
    assert data["device"] in {"cpu", "cuda", "mps"}
    assert data["backend"]["name"] in {"hf", "unsloth"} and data["backend"]["reason"]
    assert data["packages"]["torch"]
    for item in data["findings"]:
        assert set(item) == {"what", "means", "severity"}
    if data["device"] == "cpu":
        assert any(item["what"] == "No NVIDIA GPU" and "Unsloth" in item["means"] for item in data["findings"])


def test_doctor_human_output_names_device_backend_and_what_is_missing():
    result = runner.invoke(app, ["doctor"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Trains on" in result.stdout and "Backend" in result.stdout
    if "CPU" in result.stdout.split("Trains on")[1][:20]:
        assert "No NVIDIA GPU" in result.stdout


def test_doctor_survives_a_corrupt_hardware_cache_and_says_so():
    runner.invoke(app, ["doctor", "--json"])
    cache_path().write_text("{definitely not json")
    result = runner.invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    assert any("damaged" in note for note in json.loads(result.stdout)["notes"])
    human = runner.invoke(app, ["doctor"], env={"COLUMNS": "200"})
    assert human.exit_code == 0 and "Traceback" not in human.output


def test_findings_for_a_gpu_machine_without_extras():
    gpu = GpuInfo("Tesla T4", 15360, 15000, (7, 5), "550", "12.4", False, 70.0)
    profile = _cpu(gpus=[gpu], cuda_available=True)
    whats = [item.what for item in findings(profile, {"torch": "2.13", "llama-cpp-python": "0.3"}, True)]
    assert "Tesla T4 has no bf16" in whats
    assert "Unsloth is not installed" in whats and "bitsandbytes is not installed" in whats
    assert "No NVIDIA GPU" not in whats


def test_findings_for_a_cpu_only_torch_on_a_gpu_machine_and_small_machines():
    gpu = GpuInfo("RTX 4090", 24564, 24000, (8, 9), "550", "12.4", True, 450.0)
    profile = _cpu(gpus=[gpu], cuda_available=False, disk_free_mb=1000, ram_total_mb=4000)
    items = findings(profile, {"torch": None, "llama-cpp-python": None}, False)
    whats = " | ".join(item.what for item in items)
    assert "no CUDA support" in whats and "PyTorch is not installed" in whats
    assert "llama-cpp-python" in whats and "not unpacked" in whats
    assert "free disk" in whats and "GB of memory" in whats
    assert any(item.severity == "error" for item in items)
