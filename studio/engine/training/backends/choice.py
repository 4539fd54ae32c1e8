"""Which training backend runs: a pure function of the machine and the request, so every branch is tested.

Unsloth is faster and leaner but needs CUDA and its package; transformers + PEFT + TRL runs everywhere.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Literal

from studio.engine.errors import StudioError
from studio.engine.hardware import HardwareProfile

BackendName = Literal["hf", "unsloth"]
REQUESTS = ("auto", "hf", "unsloth")


@dataclass(frozen=True)
class BackendChoice:
    name: BackendName
    reason: str


def unsloth_installed() -> bool:
    """Whether the package is present, without importing it (importing Unsloth fails without a GPU)."""
    return importlib.util.find_spec("unsloth") is not None


def choose_backend(hardware: HardwareProfile, requested: str, unsloth_installed: bool) -> BackendChoice:
    """Honour an explicit request or refuse it clearly; 'auto' picks Unsloth only where it can run."""
    device = hardware.device
    if requested not in REQUESTS:
        raise StudioError(
            what=f"'{requested}' is not a training backend Studio knows.",
            why=f"The backends are: {', '.join(REQUESTS)}.",
            actions=["Use 'auto' to let Studio choose.", "Or pick 'hf' (runs everywhere) or 'unsloth' (NVIDIA)."],
            code="backend_unknown",
        )
    if requested == "hf":
        return BackendChoice("hf", "You chose transformers + PEFT, which runs on every machine.")
    if requested == "unsloth":
        if device != "cuda":
            raise StudioError(
                what="The Unsloth backend needs an NVIDIA GPU, and this machine has none.",
                why="Unsloth's fast kernels are written for CUDA only.",
                actions=["Use the standard backend: set backend to 'auto' or 'hf'.",
                         "Run on a machine with an NVIDIA GPU."],
                code="unsloth_needs_cuda",
            )
        if not unsloth_installed:
            raise StudioError(
                what="The Unsloth backend is not installed.",
                why="The 'unsloth' package is missing from this environment.",
                actions=["Install Studio's CUDA extras: pip install 'studio[cuda]'.",
                         "Or set backend to 'auto' to use transformers + PEFT."],
                code="unsloth_missing",
            )
        return BackendChoice("unsloth", "You chose Unsloth, and this machine can run it.")
    if device == "cuda" and unsloth_installed:
        return BackendChoice("unsloth", "An NVIDIA GPU and Unsloth are present: Unsloth trains about twice as "
                                        "fast with less memory.")
    if device == "cuda":
        return BackendChoice("hf", "transformers + PEFT trains on the GPU. Installing Unsloth "
                                   "(pip install 'studio[cuda]') would make it about twice as fast.")
    if device == "mps":
        return BackendChoice("hf", "transformers + PEFT trains on the Apple GPU; Unsloth needs an NVIDIA GPU.")
    return BackendChoice("hf", "No NVIDIA GPU: transformers + PEFT trains on the CPU; Unsloth needs an NVIDIA GPU.")
