"""Together AI's fine-tuning API through the official `together` SDK (3.1.x): for people who want no machine at
all. Together trains a LoRA adapter on its own GPUs; Studio uploads the run's data, starts the job, follows it
and brings the adapter back into the library.

The SDK calls used (docs/cloud-together.md says what each one sends):
    client.fine_tuning.list()                    check_key: a read-only call that proves the key works
    client.fine_tuning.model_limits(model_name)  whether Together fine-tunes the model, and its limits
    client.files.upload(file, purpose)           the run's data as Together's JSONL (checked by the SDK first)
    client.fine_tuning.estimate_price(...)       the job's price, before anything is started
    client.fine_tuning.create(..., lora=True)    the LoRA job, with the run's settings
    client.fine_tuning.retrieve / list_events / cancel
    client.fine_tuning.content(ft_id, checkpoint="adapter")   the trained adapter, as an archive
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.engine.cloud.cloud_state import cloud_file, load_launch, write_launch
from studio.engine.cloud.providers import import_sdk, key_refused, provider_error, unreachable
from studio.engine.cloud.together_state import (
    JOB_GPU,
    TogetherLaunch,
    has_together,
    load_together,
    save_together,
)
from studio.engine.config import TrainConfig
from studio.engine.errors import StudioError
from studio.engine.runs.folders import load_run_config

PROVIDER = "together"
BASE_URL_ENV = "TOGETHER_BASE_URL"  # the SDK's own: where its client sends requests (tests: a local fake)
DEFAULT_BUDGET_FACTOR = 1.5  # no budget given: 1.5x Together's estimate, as for a rented machine
MAX_RETRIES = 2

# Hugging Face ids of models Together fine-tunes with LoRA, and Together's name for each (from Together's list
# of fine-tuning models; the live `model_limits` call has the last word when the job is prepared).
TOGETHER_MODELS = {
    "meta-llama/Meta-Llama-3.1-8B-Instruct": "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
    "meta-llama/Meta-Llama-3.1-8B": "meta-llama/Meta-Llama-3.1-8B-Reference",
    "meta-llama/Meta-Llama-3.1-70B-Instruct": "meta-llama/Meta-Llama-3.1-70B-Instruct-Reference",
    "meta-llama/Llama-3.1-8B-Instruct": "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
    "meta-llama/Llama-3.1-8B": "meta-llama/Meta-Llama-3.1-8B-Reference",
    "meta-llama/Llama-3.2-1B-Instruct": "meta-llama/Llama-3.2-1B-Instruct",
    "meta-llama/Llama-3.2-3B-Instruct": "meta-llama/Llama-3.2-3B-Instruct",
    "meta-llama/Llama-3.3-70B-Instruct": "meta-llama/Llama-3.3-70B-Instruct-Reference",
    "Qwen/Qwen2.5-0.5B-Instruct": "Qwen/Qwen2.5-0.5B-Instruct",
    "Qwen/Qwen2.5-1.5B-Instruct": "Qwen/Qwen2.5-1.5B-Instruct",
    "Qwen/Qwen2.5-3B-Instruct": "Qwen/Qwen2.5-3B-Instruct",
    "Qwen/Qwen2.5-7B-Instruct": "Qwen/Qwen2.5-7B-Instruct",
    "Qwen/Qwen2.5-14B-Instruct": "Qwen/Qwen2.5-14B-Instruct",
    "Qwen/Qwen3-8B": "Qwen/Qwen3-8B",
    "mistralai/Mistral-7B-Instruct-v0.2": "mistralai/Mistral-7B-Instruct-v0.2",
    "mistralai/Mixtral-8x7B-Instruct-v0.1": "mistralai/Mixtral-8x7B-Instruct-v0.1",
    "google/gemma-2-9b-it": "google/gemma-2-9b-it",
    "google/gemma-3-4b-it": "google/gemma-3-4b-it",
}
_BY_LOWER = {key.lower(): value for key, value in TOGETHER_MODELS.items()}


# ---- the client and its errors ----------------------------------------------------------------------


def client(api_key: str) -> Any:
    """The SDK's client: Together's service, or $TOGETHER_BASE_URL when it is set (the SDK reads it too)."""
    sdk = import_sdk("together")
    return sdk.Together(api_key=api_key, base_url=os.environ.get(BASE_URL_ENV) or None, max_retries=MAX_RETRIES)


@contextmanager
def answers(doing: str) -> Iterator[None]:
    """Together's errors in Studio's words: a refused key, no answer at all, or an error it gave."""
    sdk = import_sdk("together")
    try:
        yield
    except sdk.AuthenticationError:
        raise key_refused(PROVIDER) from None
    except sdk.APIConnectionError as exc:  # timeouts included
        raise unreachable(PROVIDER, f"Studio could not connect to Together AI while {doing} ({exc}).") from None
    except sdk.APIStatusError as exc:
        raise provider_error(PROVIDER, f"While {doing}: {_message(exc)}") from None


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return f"{inner['message']} (HTTP {getattr(exc, 'status_code', '?')})"
        if isinstance(inner, str):
            return f"{inner} (HTTP {getattr(exc, 'status_code', '?')})"
    return str(exc)


def check_key(api_key: str) -> int:
    """A read-only call that proves the key works (for the Settings dialog): how many fine-tuning jobs the
    account has. A wrong key raises the plain cloud_key_refused error; no network the offline one."""
    with answers("checking the API key"):
        listed = client(api_key).fine_tuning.list()
    return len(listed.data or [])


# ---- the model --------------------------------------------------------------------------------------


def together_model(base_model: str, override: str | None = None) -> str:
    """Together's name for the run's base model (or `override`, when Studio cannot tell it from the run: a
    local folder of a model Together also hosts); a plain refusal for a model Together does not fine-tune."""
    if override:
        return override
    name = _BY_LOWER.get(base_model.strip().lower())
    if name is None:
        raise model_unsupported(base_model, "it is not one of the models Together AI fine-tunes")
    return name


def model_unsupported(model: str, why: str) -> StudioError:
    shown = "the built-in model" if model.startswith("builtin") else model
    return StudioError(
        what=f"Together AI cannot fine-tune {shown}.",
        why=f"Together trains only the models in its own list, and {why}. Nothing was uploaded or started.",
        actions=["Pick a model Together fine-tunes, for example Qwen/Qwen2.5-7B-Instruct or "
                 "meta-llama/Llama-3.2-3B-Instruct (docs/cloud-together.md lists the ones Studio knows).",
                 "Or rent a GPU for this model instead: `studio cloud offers --model MODEL`.",
                 "Or train it on this computer: `studio plan --model MODEL` says what fits here."],
        code="cloud_together_model_unsupported",
    )


@dataclass(frozen=True)
class ModelLimits:
    """What Together allows for a model's LoRA fine-tunes (the parts Studio maps the run's settings into)."""

    name: str
    min_batch_size: int
    max_batch_size: int
    max_rank: int
    min_learning_rate: float
    max_learning_rate: float
    max_epochs: int
    min_seq_length: int
    max_seq_length: int


# ---- the run's data as Together's JSONL --------------------------------------------------------------


def write_training_file(config: TrainConfig, out: Path) -> int:
    """The run's training examples, read and normalized by Studio's own dataset preparation (the rows the
    worker would train on), in Together's conversational format ({"messages": [...]}) or, for plain text,
    its general format ({"text": ...}). Returns the number of rows written."""
    from studio.engine.datasets.options import DatasetOptions
    from studio.engine.datasets.prepare import prepare_dataset

    if config.objective != "sft":
        raise StudioError(
            what=f"Studio sends only supervised fine-tuning to Together AI, and this run uses {config.objective}.",
            why="Together's preference tuning takes a different file layout, which Studio does not write yet. "
                "Nothing was uploaded or started.",
            actions=["Train this run on a rented GPU instead: `studio cloud train --provider runpod RUN`.",
                     "Or make a supervised run (conversations or text) for Together AI."],
            code="cloud_together_objective_unsupported",
        )
    options = DatasetOptions(mapping=config.column_mapping, profile=config.profile,
                             eval_fraction=config.eval_fraction, seed=config.seed)
    prepared = prepare_dataset(config.dataset_path or "", options)
    rows = 0
    with out.open("w", encoding="utf-8") as lines:
        for example in prepared.train:
            if example.get("messages"):
                row: dict[str, Any] = {"messages": [{"role": m["role"], "content": m["content"]}
                                                    for m in example["messages"]]}
            elif example.get("text"):
                row = {"text": example["text"]}
            else:
                continue
            lines.write(json.dumps(row, ensure_ascii=False) + "\n")
            rows += 1
    return rows


# ---- the jobs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobEvent:
    type: str
    message: str
    level: str = "info"
    step: int | None = None
    total_steps: int | None = None


@dataclass(frozen=True)
class Job:
    id: str
    status: str  # pending, queued, running, compressing, uploading, cancel_requested, cancelled, error, completed
    total_price: float | None = None  # US dollars (see docs/cloud-together.md: the unit is not verified)
    seconds_remaining: float | None = None
    events: list[JobEvent] = field(default_factory=list)


ENDED = {"cancelled", "error", "completed"}


class TogetherJobs:
    """The few SDK calls the runner and `prepare_together` need, each with Studio's plain errors."""

    def limits(self, api_key: str, model: str) -> ModelLimits:
        sdk = import_sdk("together")
        with answers("asking which models Together fine-tunes"):
            try:
                found = client(api_key).fine_tuning.model_limits(model_name=model)
            except (sdk.NotFoundError, sdk.BadRequestError, sdk.UnprocessableEntityError):
                raise model_unsupported(model, "Together does not list it for fine-tuning") from None
        lora = found.lora_training
        return ModelLimits(model, lora.min_batch_size, lora.max_batch_size, lora.max_rank,
                           found.min_learning_rate, found.max_learning_rate, found.max_num_epochs,
                           found.min_max_seq_length, found.max_seq_length_sft)

    def upload(self, api_key: str, path: Path) -> str:
        sdk = import_sdk("together")
        try:
            with answers("uploading the training data"):
                uploaded = client(api_key).files.upload(file=path, purpose="fine-tune", check=True)
        except sdk.FileTypeError as exc:
            raise StudioError(
                what="Together AI's checks refused the training data Studio prepared.",
                why=str(exc)[:600],
                actions=["Check the dataset with `studio validate FILE` and fix the rows it names.",
                         "Or train this run on a rented GPU: `studio cloud train --provider runpod RUN`."],
                code="cloud_together_data_refused",
            ) from None
        return str(uploaded.id)

    def delete_file(self, api_key: str, file_id: str) -> None:
        """Best effort: an upload no job will use (a price refused) is not left in the account."""
        with contextlib.suppress(StudioError), answers("deleting the uploaded data"):
            client(api_key).files.delete(file_id)

    def estimate(self, api_key: str, file_id: str, model: str, epochs: int) -> float | None:
        """Together's price for the job in US dollars, None when it cannot estimate one."""
        with answers("asking for the price of the job"):
            found = client(api_key).fine_tuning.estimate_price(
                training_file=file_id, model=model, n_epochs=epochs, n_evals=0,
                training_method={"method": "sft", "train_on_inputs": "auto"},
                training_type={"type": "Lora"})
        if not getattr(found, "estimation_available", False):
            return None
        price = getattr(found, "estimated_total_price", None)
        return float(price) if price is not None else None

    def create(self, api_key: str, file_id: str, model: str, settings: dict[str, Any]) -> str:
        with answers("starting the fine-tuning job"):
            try:
                job = client(api_key).fine_tuning.create(training_file=file_id, model=model, lora=True,
                                                         **settings)
            except ValueError as exc:  # the SDK's own checks of the settings against the model's limits
                raise StudioError(
                    what="Together AI does not accept this run's settings for that model.",
                    why=str(exc),
                    actions=["Change the setting it names (`studio plan` shows them) and start again.",
                             "Or train this run on a rented GPU: `studio cloud train --provider runpod RUN`."],
                    code="cloud_together_settings_refused",
                ) from None
        return str(job.id)

    def get(self, api_key: str, job_id: str) -> Job:
        with answers("reading the job's status"):
            api = client(api_key).fine_tuning
            found = api.retrieve(job_id)
            listed = api.list_events(job_id)
        events = [JobEvent(str(item.type), str(item.message), str(item.level or "info"), item.step,
                           item.total_steps) for item in listed.data or []]
        progress = found.progress
        remaining = float(progress.seconds_remaining) if progress and progress.estimate_available else None
        price = float(found.total_price) if found.total_price is not None else None
        return Job(found.id, str(found.status), price, remaining, events)

    def cancel(self, api_key: str, job_id: str) -> str:
        with answers("cancelling the job"):
            return str(client(api_key).fine_tuning.cancel(job_id).status)

    def download_adapter(self, api_key: str, job_id: str, into: Path) -> Path:
        """The trained LoRA adapter (PEFT files) unpacked into `into`; returns the folder that holds
        adapter_config.json."""
        with answers("downloading the trained adapter"):
            response = client(api_key).fine_tuning.content(ft_id=job_id, checkpoint="adapter")
            archive = into / "adapter.archive"
            response.write_to_file(archive)
        return unpack_adapter(archive, into / "adapter")


def unpack_adapter(archive: Path, into: Path) -> Path:
    """Together's archive (tar, compressed with zstd or gzip) unpacked: regular files only, no paths outside."""
    data = archive.read_bytes()
    if data[:4] == b"\x28\xb5\x2f\xfd":  # zstd: Together's documented format for downloads
        data = _unzstd(data)
    into.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and not Path(m.name).is_absolute()
                       and ".." not in Path(m.name).parts]
            for member in members:
                source = tar.extractfile(member)
                if source is None:
                    continue
                target = into / Path(member.name).name  # the adapter's files, flat
                with source, target.open("wb") as out:
                    shutil.copyfileobj(source, out)
    except tarfile.TarError as exc:
        raise _bad_archive(f"it is not an archive Studio can read ({exc})") from None
    if not (into / "adapter_config.json").is_file():
        raise _bad_archive("it holds no adapter_config.json")
    return into


def _unzstd(data: bytes) -> bytes:
    try:
        import zstandard
    except ImportError:
        import subprocess

        if shutil.which("zstd") is None:
            raise _bad_archive("it is compressed with zstd, and neither the Python package 'zstandard' nor the "
                               "zstd program is installed") from None
        return subprocess.run(["zstd", "-dc"], input=data, capture_output=True, check=True).stdout
    return bytes(zstandard.ZstdDecompressor().decompressobj().decompress(data))


def _bad_archive(why: str) -> StudioError:
    return StudioError(
        what="The adapter Together AI returned cannot be read.",
        why=f"Studio downloaded it, but {why}.",
        actions=["Download it from your Together AI jobs page and import the folder with `studio handoff import`.",
                 "Or install zstd (`pip install zstandard`) and start the run again: it reattaches to the job."],
        code="cloud_together_adapter_unreadable",
    )


# ---- preparing a run for Together ---------------------------------------------------------------------


def job_settings(config: TrainConfig, limits: ModelLimits) -> dict[str, Any]:
    """The run's settings where Together has them, kept within the model's limits."""
    batch = min(max(config.micro_batch_size * config.gradient_accumulation, limits.min_batch_size),
                limits.max_batch_size)
    return {
        "n_epochs": max(1, min(round(config.num_epochs), limits.max_epochs)),
        "learning_rate": min(max(config.learning_rate, limits.min_learning_rate), limits.max_learning_rate),
        "lora_r": min(config.lora_r, limits.max_rank),
        "lora_alpha": float(config.lora_alpha),
        "lora_dropout": config.lora_dropout,
        "batch_size": batch,
        "max_seq_length": min(max(config.max_length, limits.min_seq_length), limits.max_seq_length),
        "warmup_ratio": config.warmup_ratio,
        "weight_decay": config.weight_decay,
        "max_grad_norm": config.max_grad_norm,
        "lr_scheduler_type": "linear" if config.lr_scheduler == "linear" else "cosine",
        "train_on_inputs": not config.assistant_only_loss,
        "random_seed": config.seed,
        "n_checkpoints": 1,
        "packing": config.packing,
    }


def budget_refused(estimate: float, budget: float) -> StudioError:
    return StudioError(
        what=f"Together AI estimates this job at ${estimate:.2f}, above the budget of ${budget:.2f}.",
        why="Studio does not start a job that would cost more than the budget. No job was started and nothing "
            "is billed; the data sent for the estimate was deleted again.",
        actions=[f"Raise the budget to at least ${estimate:.2f}: `--budget {estimate * DEFAULT_BUDGET_FACTOR:.2f}`.",
                 "Or train fewer epochs, or on less data, and start again."],
        code="cloud_together_over_budget",
    )


def prepare_together(run_dir: Path, api_key: str, budget_usd: float | None, model: str | None = None,
                     jobs: TogetherJobs | None = None) -> TogetherLaunch:
    """Check the model, upload the run's data, ask Together's price and refuse one above the budget; then
    write together.json (and cloud.json, which marks the run as one that trains elsewhere, for the dashboard
    and `studio cloud status`). Nothing is started here: the runner starts the job."""
    jobs = jobs or TogetherJobs()
    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    if has_together(run_dir):
        earlier = load_together(run_dir)
        if earlier.job_id and earlier.outcome in {None, "interrupted"}:
            raise StudioError(
                what="This run already has a Together AI job.",
                why=f"Its job {earlier.job_id} may still be training it.",
                actions=["Start the run again to reattach to it.",
                         "Or stop it first: `studio cloud stop RUN` cancels the job."],
                code="cloud_together_has_job",
            )
    if cloud_file(run_dir).is_file() and load_launch(run_dir).pod_id:
        raise StudioError(what="This run already has a rented machine.", why="A pod may still be training it.",
                          actions=["Stop it first: `studio cloud stop RUN`."], code="cloud_run_has_machine")
    name = together_model(config.base_model, model)
    limits = jobs.limits(api_key, name)  # the first call: a wrong key is refused before anything is sent
    settings = job_settings(config, limits)
    with tempfile.TemporaryDirectory(prefix="studio-together-") as tmp:
        data = Path(tmp) / f"studio-{run_dir.name}.jsonl"
        rows = write_training_file(config, data)
        file_id = jobs.upload(api_key, data)
    estimate = jobs.estimate(api_key, file_id, name, int(settings["n_epochs"]))
    if budget_usd is None:
        if estimate is None:
            raise StudioError(
                what="Together AI gave no price estimate for this job, so Studio needs a budget.",
                why="Without an estimate Studio cannot suggest one. Nothing was started.",
                actions=["Give a budget: `studio cloud train --provider together --budget USD RUN`."],
                code="cloud_together_no_estimate",
            )
        budget_usd = round(estimate * DEFAULT_BUDGET_FACTOR, 2) or 0.01
    if estimate is not None and estimate > budget_usd:
        jobs.delete_file(api_key, file_id)
        raise budget_refused(estimate, budget_usd)
    launch = TogetherLaunch(model=name, budget_usd=float(budget_usd), estimate_usd=estimate, file_id=file_id,
                            examples=rows)
    save_together(run_dir, launch)
    # price_per_hour: Together bills per token, not per hour; the job's estimate stands in (see the docs).
    write_launch(run_dir, PROVIDER, JOB_GPU, spot=False, cloud="secure", budget_usd=float(budget_usd),
                 price_per_hour=max(estimate or float(budget_usd), 0.01))
    return launch
