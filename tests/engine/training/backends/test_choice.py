"""Backend choice: every branch of the decision, without a GPU."""

from __future__ import annotations

import pytest

from studio.engine.errors import StudioError
from studio.engine.hardware import GpuInfo, HardwareProfile
from studio.engine.training.backends.choice import choose_backend, unsloth_installed


def _machine(device: str) -> HardwareProfile:
    profile = HardwareProfile("Linux", "cpu", 8, 32_000, 20_000, 100_000)
    if device == "cuda":
        profile.gpus = [GpuInfo("NVIDIA L4", 23034, 22000, (8, 9), "550", "12.4", True, 72.0)]
        profile.cuda_available = True
    profile.mps = device == "mps"
    return profile


@pytest.mark.parametrize(("device", "installed", "expected"), [
    ("cuda", True, "unsloth"), ("cuda", False, "hf"), ("mps", True, "hf"), ("cpu", True, "hf"), ("cpu", False, "hf"),
])
def test_auto(device, installed, expected):
    choice = choose_backend(_machine(device), "auto", installed)
    assert choice.name == expected and choice.reason


def test_auto_on_cuda_without_unsloth_says_how_to_get_it():
    assert "studio[cuda]" in choose_backend(_machine("cuda"), "auto", False).reason


@pytest.mark.parametrize("device", ["cpu", "mps", "cuda"])
def test_hf_is_always_honoured(device):
    assert choose_backend(_machine(device), "hf", False).name == "hf"


def test_unsloth_on_request_where_it_can_run():
    assert choose_backend(_machine("cuda"), "unsloth", True).name == "unsloth"


@pytest.mark.parametrize(("device", "installed", "code"), [
    ("cpu", True, "unsloth_needs_cuda"), ("mps", True, "unsloth_needs_cuda"), ("cuda", False, "unsloth_missing"),
])
def test_unsloth_on_request_where_it_cannot_run_is_refused_clearly(device, installed, code):
    with pytest.raises(StudioError) as info:
        choose_backend(_machine(device), "unsloth", installed)
    assert info.value.code == code and info.value.actions


def test_unknown_backend():
    with pytest.raises(StudioError) as info:
        choose_backend(_machine("cpu"), "tensorflow", False)
    assert info.value.code == "backend_unknown"


def test_unsloth_detection_does_not_import_it():
    import sys

    unsloth_installed()
    assert "unsloth" not in sys.modules
