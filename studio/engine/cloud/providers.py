"""The GPU providers Studio rents from, what each one offers, and the plain errors they share.

A provider lists its GPU types (name and memory: enough for the planner to say what fits) and then the
prices of the ones that fit, so a live listing asks only about machines the run could use.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Literal, Protocol

from studio.engine.errors import StudioError

# Providers that can list offers today; Together AI is decided (docs/cloud.md) but not built yet.
PROVIDER_NAMES = {"runpod": "RunPod", "lambda": "Lambda"}
PLANNED = {"together": "Together AI"}
CLOUD_EXTRA = "pip install 'studio[cloud]'"

Cloud = Literal["secure", "community"]


@dataclass(frozen=True)
class GpuType:
    id: str  # the provider's own id, used to rent it
    name: str  # the NVIDIA name, as the planner's speed table knows it
    vram_gb: float


@dataclass(frozen=True)
class Price:
    per_hour: float  # US dollars for one GPU
    spot: bool  # interruptible: cheaper, but the machine can be taken away
    cloud: Cloud


MachineState = Literal["starting", "running", "exited", "gone"]


def machine_name(run_id: str) -> str:
    """The name every machine rented for a run carries: how one whose id was never saved is found again."""
    return f"studio-{run_id}"


@dataclass(frozen=True)
class MachineRequest:
    name: str  # studio-RUN_ID: how a machine whose id was never saved is found again
    gpu_id: str
    spot: bool
    cloud: Cloud
    bid_per_gpu: float  # a spot machine's bid: the listed spot price
    env: dict[str, str]


@dataclass(frozen=True)
class Machine:
    id: str
    state: MachineState  # starting (no agent yet), running, exited (stopped or taken back) or gone
    cost_per_hour: float | None = None
    address: str | None = None  # its public IP, where the provider gives one (Lambda: once it has booted)
    name: str = ""


class Machines(Protocol):
    """Rent, watch and terminate the machines of one provider: what the cloud runner needs of it."""

    def create(self, api_key: str, request: MachineRequest) -> str: ...

    def get(self, api_key: str, machine_id: str) -> Machine: ...

    def find(self, api_key: str, name: str) -> list[Machine]:
        """The account's machines named `name` that are not gone: how a machine whose id was never saved
        (the runner was killed right after renting it) is found again."""
        ...

    def terminate(self, api_key: str, machine_id: str) -> None: ...

    def agent_url(self, machine: Machine) -> str | None:
        """Where the run agent on `machine` answers; None while the provider has not said yet (an address
        that is only known once the machine has booted)."""
        ...


# ---- the run agent on a rented machine: one start command for every provider ---------------------------

AGENT_PORT = 8765
# How the agent's code gets onto the machine before the bundle arrives: a pip install before it starts.
# Not yet checked on a real account (docs/cloud.md); STUDIO_CLOUD_AGENT_INSTALL replaces it.
INSTALL_ENV = "STUDIO_CLOUD_AGENT_INSTALL"
DEFAULT_INSTALL = "pip install --no-cache-dir studio"


def agent_command(home: str, python: str = "python") -> str:
    """The shell command that installs Studio's engine and runs the agent in `home` (its token comes from
    $STUDIO_AGENT_TOKEN in the machine's environment). RunPod runs it as the pod's start command, Lambda
    from the instance's cloud-init user data."""
    install = os.environ.get(INSTALL_ENV, DEFAULT_INSTALL)
    return f"{install} && {python} -m studio.engine.cloud.agent --port {AGENT_PORT} --home {home}"


class Provider(Protocol):
    id: str
    name: str
    # The largest dataset Studio sends along with a run (see docs/cloud.md).
    max_upload_bytes: int

    def gpu_types(self, api_key: str) -> list[GpuType]: ...

    def prices(self, api_key: str, gpu: GpuType) -> list[Price]: ...


def provider_name(provider: str) -> str:
    known = {**PROVIDER_NAMES, **PLANNED}
    if provider not in known:
        raise StudioError(
            what=f"Studio does not know the cloud provider '{provider}'.",
            actions=[f"Use one of: {', '.join(sorted(PROVIDER_NAMES))}."],
            code="cloud_unknown_provider",
        )
    return known[provider]


def import_sdk(module: str) -> ModuleType:
    """A provider's SDK, imported only when a cloud feature is used (it is the optional `cloud` extra)."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise StudioError(
            what="Renting a GPU needs Studio's cloud libraries, which are not installed.",
            why=f"The Python package '{module}' could not be imported ({exc}).",
            actions=[f"Install them: {CLOUD_EXTRA}", "Or pack the run for a machine you rent yourself: "
                     "`studio handoff export RUN --out FOLDER`."],
            code="cloud_sdk_missing",
        ) from None


def key_refused(provider: str) -> StudioError:
    name = provider_name(provider)
    return StudioError(
        what=f"{name} refused the API key.",
        why="The key is wrong, expired or was revoked. Nothing was created and nothing is billed.",
        actions=[f"Create a new key in your {name} account settings.",
                 f"Save it with `studio cloud login {provider}` and try again."],
        code="cloud_key_refused",
    )


def unreachable(provider: str, reason: str) -> StudioError:
    """The one message for "no provider": no network, or a provider that does not answer."""
    return StudioError(
        what=f"Studio cannot reach {provider_name(provider)} right now.",
        why=reason,
        actions=["Check your internet connection and try again.",
                 "Train on this computer instead: the planner says what fits here (`studio plan`).",
                 "Or pack the run for a machine you rent yourself: `studio handoff export RUN --out FOLDER`."],
        code="cloud_offline",
    )


def provider_error(provider: str, message: str) -> StudioError:
    return StudioError(
        what=f"{provider_name(provider)} answered with an error.",
        why=message,
        actions=["Try again in a minute: the provider may be busy.",
                 "Check the provider's status page if it keeps happening."],
        code="cloud_provider_error",
    )
