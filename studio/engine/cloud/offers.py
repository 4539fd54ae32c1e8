"""The rented GPUs that fit a planned run, each with the planner's time and cost, and the budget cap.

Every GPU type the provider lists is planned for as if it were this machine's GPU (the same planner,
memory model and speed table as a local run), so an offer is shown only when the run fits its memory,
and its time and cost come with the planner's interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.engine.cloud.connect import get_provider
from studio.engine.cloud.keys import load_api_key
from studio.engine.cloud.providers import GpuType, Price, Provider
from studio.engine.config import TrainConfig
from studio.engine.errors import StudioError
from studio.engine.hardware import GpuInfo, HardwareProfile
from studio.engine.models.facts import ModelFacts
from studio.engine.planner import DatasetStats, Interval, estimate, plan
from studio.engine.profiles import Profile

# Billed time before the first step: the machine starts, pulls its image, installs requirements.txt and
# receives the bundle. An unmeasured allowance, kept wide.
SETUP_S = Interval(120.0, 300.0, 900.0)
BUDGET_FACTOR = 1.5  # the default cap, over the expected cost
# Host memory and cores of a rented machine are not listed with the GPU; these are the smallest usual.
HOST_RAM_MB = 32 * 1024
HOST_CORES = 8
# GPUs before Ampere: no bf16.
PRE_AMPERE = ("v100", "t4", "p100", "rtx 20", "titan v", "quadro rtx")


@dataclass(frozen=True)
class Offer:
    provider: str
    gpu: GpuType
    price: Price


@dataclass(frozen=True)
class OfferEstimate:
    offer: Offer
    config: TrainConfig  # the plan for this GPU
    peak_memory_mb: Interval
    total_time_s: Interval  # setup included
    cost: Interval  # US dollars

    @property
    def default_budget(self) -> float:
        return round(self.cost.expected * BUDGET_FACTOR, 2)

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.offer.provider, "gpu_id": self.offer.gpu.id, "gpu": self.offer.gpu.name,
            "vram_gb": self.offer.gpu.vram_gb, "price_per_hour": self.offer.price.per_hour,
            "spot": self.offer.price.spot, "cloud": self.offer.price.cloud,
            "peak_memory_mb": self.peak_memory_mb.to_dict(), "total_time_s": self.total_time_s.to_dict(),
            "cost": self.cost.to_dict(), "default_budget": self.default_budget,
            "method": self.config.method, "quantization": self.config.quantization,
        }


@dataclass(frozen=True)
class OffersReport:
    provider: str
    estimates: list[OfferEstimate]  # cheapest expected cost first; never empty

    @property
    def cheapest(self) -> OfferEstimate:
        return self.estimates[0]

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "offers": [item.to_dict() for item in self.estimates]}


def gpu_hardware(gpu: GpuType) -> HardwareProfile:
    """A machine with this one GPU, for the planner: what a rented pod of this type looks like."""
    total = int(gpu.vram_gb * 1024)
    old = any(name in gpu.name.lower() for name in PRE_AMPERE)
    info = GpuInfo(name=gpu.name, total_mb=total, free_mb=total - 400, compute_capability=(7, 0) if old else (8, 0),
                   driver_version="", cuda_version="", bf16=not old, power_limit_w=None)
    ram = max(HOST_RAM_MB, 2 * total)
    return HardwareProfile(os="Linux", cpu_name="rented", cpu_cores=HOST_CORES, ram_total_mb=ram,
                           ram_available_mb=ram, disk_free_mb=200_000, gpus=[info], cuda_available=True)


def offers(
    provider_id: str,
    model: ModelFacts,
    profile: Profile,
    stats: DatasetStats | None = None,
    *,
    dataset: Path | None = None,
    overrides: dict[str, Any] | None = None,
    api_key: str | None = None,
) -> OffersReport:
    """The provider's live offers that fit this run, cheapest first; a plain refusal when none does."""
    provider = get_provider(provider_id)
    if dataset is not None:
        check_upload(provider, dataset)
    key = api_key or load_api_key(provider_id)
    fitting: list[tuple[GpuType, HardwareProfile, TrainConfig]] = []
    largest: tuple[GpuType, float] | None = None  # the largest GPU that does not fit, and the run's need
    for gpu in provider.gpu_types(key):
        hardware = gpu_hardware(gpu)
        planned = plan(hardware, model, profile, stats, overrides=overrides)
        if planned.fits:
            fitting.append((gpu, hardware, planned.config))
        elif largest is None or gpu.vram_gb > largest[0].vram_gb:
            largest = (gpu, planned.estimates.peak_memory_mb.expected)
    if not fitting:
        raise _nothing_fits(provider, model, overrides or {}, largest)
    found: list[OfferEstimate] = []
    for gpu, hardware, config in fitting:
        for price in provider.prices(key, gpu):
            est = estimate(config, hardware, model, stats, hourly_price=price.per_hour)
            total = Interval(est.total_time_s.low + SETUP_S.low, est.total_time_s.expected + SETUP_S.expected,
                             est.total_time_s.high + SETUP_S.high)
            found.append(OfferEstimate(Offer(provider_id, gpu, price), config, est.peak_memory_mb, total,
                                       total.scaled(price.per_hour / 3600.0)))
    if not found:
        raise StudioError(
            what=f"None of the {provider.name} GPUs that fit this run can be rented right now.",
            why="The provider lists them but has no machine of those types free at the moment.",
            actions=["Try again in a few minutes: machines free up all the time.",
                     "Use a smaller model or QLoRA, which fit on more kinds of GPU."],
            code="cloud_none_available",
        )
    found.sort(key=lambda item: item.cost.expected)
    return OffersReport(provider_id, found)


def check_budget(report: OffersReport, budget: float) -> list[OfferEstimate]:
    """The offers whose expected cost is within `budget`; refused when even the cheapest is not."""
    cheapest = report.cheapest
    if budget < cheapest.cost.expected:
        raise _budget_too_low(budget, cheapest)
    return [item for item in report.estimates if item.cost.expected <= budget]


def budget_cap(offer: OfferEstimate, budget: float | None = None) -> float:
    """The cap a launch on `offer` stops at: 1.5x its expected cost unless the user set one (not below it)."""
    if budget is None:
        return offer.default_budget
    if budget < offer.cost.expected:
        raise _budget_too_low(budget, offer)
    return budget


def check_upload(provider: Provider, dataset: Path) -> None:
    files = [dataset] if dataset.is_file() else [path for path in dataset.rglob("*") if path.is_file()]
    size = sum(path.stat().st_size for path in files)
    if size > provider.max_upload_bytes:
        raise StudioError(
            what=f"The dataset is too large to send to {provider.name}: {_gb(size)}.",
            why=f"Studio sends at most {_gb(provider.max_upload_bytes)} of data with a rented run: the machine's "
                "disk also holds the model and its checkpoints, and the upload goes over your connection.",
            actions=["Train on a sample of the data first: a few thousand good examples usually teach most of it.",
                     "Or pack the run yourself and copy the data to the machine: "
                     "`studio handoff export RUN --out FOLDER`."],
            code="cloud_dataset_too_large",
        )


def _gb(size: int) -> str:
    return f"{size / 1024**3:.1f} GB"


def _budget_too_low(budget: float, offer: OfferEstimate) -> StudioError:
    cost = offer.cost
    return StudioError(
        what=f"A budget of ${budget:.2f} is below the estimated cost, ${cost.expected:.2f}.",
        why=f"The cheapest fitting offer ({offer.offer.gpu.name}, ${offer.offer.price.per_hour:.2f}/h) is "
            f"estimated at ${cost.expected:.2f} (${cost.low:.2f} to ${cost.high:.2f}); the run would stop before "
            "it ends.",
        actions=[f"Raise the budget to at least ${cost.expected:.2f} (Studio suggests ${offer.default_budget:.2f}).",
                 "Train for fewer epochs or on less data, which costs less.",
                 "Pick a smaller model: it trains faster on a cheaper GPU."],
        code="cloud_budget_too_low",
    )


def _nothing_fits(provider: Provider, model: ModelFacts, overrides: dict[str, Any],
                  largest: tuple[GpuType, float] | None) -> StudioError:
    if largest is None:
        return StudioError(what=f"{provider.name} lists no GPUs right now.",
                           actions=["Try again in a few minutes.", "Check the provider's status page."],
                           code="cloud_none_available")
    gpu, need_mb = largest
    actions = ["Pick a smaller model: 1 to 3 billion parameters train on most rented GPUs.",
               "Shorten the maximum example length, which cuts the memory for activations."]
    if overrides.get("quantization", "4bit") != "4bit":
        actions.insert(0, "Train with QLoRA (4-bit base weights), which needs about a quarter of the memory.")
    return StudioError(
        what=f"{model.name} does not fit on any GPU {provider.name} offers.",
        why=f"With the leanest settings training needs about {need_mb / 1024:.0f} GB of GPU memory; the largest "
            f"GPU offered ({gpu.name}) has {gpu.vram_gb:.0f} GB.",
        actions=actions,
        code="cloud_no_fitting_gpu",
    )
