"""Which client talks to which provider: the one module that knows every provider's implementation, so
the shared provider types (providers.py) import none of them."""

from __future__ import annotations

from studio.engine.cloud.lambda_api import LambdaMachines, LambdaProvider
from studio.engine.cloud.providers import PLANNED, PROVIDER_NAMES, Machines, Provider, provider_name
from studio.engine.cloud.runpod_api import RunPodPods, RunPodProvider
from studio.engine.errors import StudioError


def get_provider(provider: str) -> Provider:
    """The client of a provider Studio can rent from; a plain error for one it knows but cannot use yet."""
    _refuse_planned(provider)
    if provider == "lambda":
        return LambdaProvider()
    return RunPodProvider()


def get_machines(provider: str) -> Machines:
    """How the cloud runner rents, watches and terminates this provider's machines."""
    _refuse_planned(provider)
    if provider == "lambda":
        return LambdaMachines()
    return RunPodPods()


def _refuse_planned(provider: str) -> None:
    name = provider_name(provider)
    if provider in PLANNED:
        raise StudioError(
            what=f"Renting from {name} is not available in this version of Studio yet.",
            actions=[f"Use {', '.join(PROVIDER_NAMES.values())} for now: `studio cloud offers --provider runpod`.",
                     "Or pack the run for a machine you rent yourself: `studio handoff export RUN --out FOLDER`."],
            code="cloud_provider_not_ready",
        )
