"""A fake Together AI on 127.0.0.1 whose fine-tuning jobs really train: each job runs Studio's own local worker
on the uploaded data (a small model stands in for the Together model named), and serves the adapter it saved.

It answers exactly the requests the `together` SDK 3.1.x sends for what Studio does (together/resources/
fine_tuning.py, together/lib/resources/files.py), in the shapes of the SDK's types (together/types/*.py):

    GET  /v1/fine-tunes                          {"data": [job, ...]}               (check_key)
    GET  /v1/fine-tunes/models/limits?model_name=M   FinetuneModelLimits, 404 for a model it does not tune
    POST /v1/files                               302, Location: /upload/FILE_ID, X-Together-File-Id
    PUT  /upload/FILE_ID                         the file's bytes (the SDK's redirect upload)
    POST /v1/files/FILE_ID/preprocess            FileResponse
    POST /v1/fine-tunes/estimate-price           AvailableEstimate (estimated_total_price: `estimate_usd`)
    POST /v1/fine-tunes                          the job: FinetuneResponse, status "pending"
    GET  /v1/fine-tunes/ID                       the job, as it stands
    GET  /v1/fine-tunes/ID/events                {"data": [FinetuneEvent, ...]}, oldest first
    POST /v1/fine-tunes/ID/cancel                the job, "cancel_requested"; the worker is stopped
    DELETE /v1/files/FILE_ID                     FileDeleteResponse (an upload for a price refused)
    GET  /v1/finetune/download?ft_id=ID&checkpoint=adapter   the adapter's files as a tar, zstd-compressed
                                                 (Together's format) when the zstd program is here, else gzip

Every request without `Authorization: Bearer GOOD_KEY` gets 401, as Together answers a wrong key. A job goes
pending, queued, running (the worker trains `max_steps` steps), compressing, uploading, completed, with
Together's event types on the way; `requests` records every (method, path) so a test can say what was sent.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from studio.engine.cloud.together_api import BASE_URL_ENV
from studio.engine.config import TrainConfig
from studio.engine.events import Event
from studio.engine.runs.creation import new_run_id
from studio.engine.runs.folders import final_adapter_dir
from studio.engine.training.supervisor import Supervisor
from tests.engine.cloud.fake_runpod import FileKeyring
from tests.local_http import JsonHandler, serving, url_of

ROOT = Path(__file__).resolve().parents[3]
KEYRING_FILE_ENV = "STUDIO_TEST_KEYRING_FILE"  # where FileKeyring keeps its passwords (the runner's too)
GOOD_KEY = "together-test-key-0123456789"
MODEL = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"  # the Together model the tests fine-tune
USER = "user-fake-0001"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


@dataclass
class FakeJob:
    id: str
    model: str
    request: dict[str, Any]
    status: str = "pending"
    events: list[dict[str, Any]] = field(default_factory=list)
    created_at: str = field(default_factory=_now)
    updated_at: str = field(default_factory=_now)
    total_price: int | None = None
    run_dir: Path | None = None
    supervisor: Supervisor | None = None
    cancel_asked: bool = False
    archive: bytes | None = None

    def add(self, kind: str, message: str, level: str = "info", **more: Any) -> None:
        self.events.append({"object": "fine-tune-event", "created_at": _now(), "type": kind, "message": message,
                            "level": level, **more})

    def set(self, status: str) -> None:
        self.status, self.updated_at = status, _now()

    def detail(self) -> dict[str, Any]:
        training_type = self.request.get("training_type") or {"type": "Lora", "lora_r": 8, "lora_alpha": 16}
        return {
            "id": self.id, "status": self.status, "user_id": USER, "created_at": self.created_at,
            "updated_at": self.updated_at, "model": self.model, "training_file": self.request.get("training_file"),
            "n_epochs": self.request.get("n_epochs"), "learning_rate": self.request.get("learning_rate"),
            "batch_size": self.request.get("batch_size"), "training_type": training_type,
            "output_name": f"fake/{self.model.split('/')[-1]}-{self.id}",
            "model_output_name": f"fake/{self.model.split('/')[-1]}-{self.id}",
            "adapter_output_name": f"fake/{self.model.split('/')[-1]}-{self.id}-adapter",
            "total_price": self.total_price, "events": self.events,
            "progress": {"estimate_available": False, "seconds_remaining": 0},
        }


@dataclass
class FakeTogether:
    models: dict[str, Path]  # the Together models it fine-tunes, each trained as this local model folder
    home: Path
    key: str = GOOD_KEY
    url: str = ""
    estimate_usd: float = 0.42
    max_steps: int = 3
    price_while_training: int | None = None  # total_price a job reports once it trains (None: none until done)
    files: dict[str, Path] = field(default_factory=dict)
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)  # files deleted through the API
    requests: list[tuple[str, str]] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- the API ---------------------------------------------------------------------------------

    def limits(self, name: str) -> dict[str, Any] | None:
        if name not in self.models:
            return None
        return {
            "model_name": name, "default_gradient_accumulation_steps": 1, "max_learning_rate": 1.0,
            "min_learning_rate": 1e-8, "max_num_checkpoints": 10, "max_num_epochs": 20, "max_num_evals": 10,
            "max_seq_length_sft": 8192, "max_seq_length_dpo": 8192, "min_max_seq_length": 16,
            "merge_output_lora": True, "supports_full_training": False, "supports_reasoning": False,
            "supports_tools": False, "supports_vision": False,
            "lora_training": {"default_rank": 8, "max_batch_size": 16, "max_batch_size_dpo": 8, "max_rank": 64,
                              "min_batch_size": 1, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"]},
        }

    def new_file(self) -> str:
        return f"file-{next(self._ids):08d}-fake"

    def create(self, request: dict[str, Any]) -> FakeJob:
        job = FakeJob(f"ft-{next(self._ids):08x}-fake", str(request.get("model")), request)
        job.add("job_pending", "Fine-tune request created")
        with self._lock:
            self.jobs[job.id] = job
            self.created.append(job.id)
        threading.Thread(target=self._run_job, args=(job,), daemon=True).start()
        return job

    def cancel(self, job_id: str) -> FakeJob | None:
        job = self.jobs.get(job_id)
        if job is None:
            return None
        with self._lock:
            self.cancelled.append(job_id)
            if job.status not in {"completed", "cancelled", "error"}:
                job.cancel_asked = True
                job.set("cancel_requested")
                job.add("cancel_requested", "Cancel requested")
                if job.supervisor is not None:
                    job.supervisor.stop()
        return job

    # ---- a job: Studio's own worker, on the uploaded data ----------------------------------------

    def _run_job(self, job: FakeJob) -> None:
        try:
            self._train(job)
        except Exception as exc:  # as Together would: the job fails, with its reason among its events
            job.set("error")
            job.add("job_error", f"Fake Together could not run the job: {type(exc).__name__}: {exc}", level="error")

    def _train(self, job: FakeJob) -> None:
        time.sleep(0.3)
        if job.cancel_asked:
            return self._cancelled(job)
        job.set("queued")
        job.add("job_start", "Job started")
        request = job.request
        lora = request.get("training_type") or {}
        data = self.files[str(request["training_file"])]
        run_dir = self.home / "jobs" / job.id / new_run_id("together")
        run_dir.mkdir(parents=True)
        config = TrainConfig.from_dict({
            "base_model": str(self.models[job.model]), "dataset_path": str(data), "max_steps": self.max_steps,
            "num_epochs": request.get("n_epochs") or 1, "learning_rate": min(request.get("learning_rate") or 1e-4,
                                                                              1e-2),
            "lora_r": lora.get("lora_r", 8), "lora_alpha": int(lora.get("lora_alpha", 16)),
            "lora_dropout": lora.get("lora_dropout", 0.0), "micro_batch_size": int(request.get("batch_size") or 2),
            "gradient_accumulation": 1, "max_length": int(request.get("max_seq_length") or 64),
            "eval_fraction": 0.0, "checkpoint_every_steps": 1000, "score_examples": False, "hardest_top_n": 0,
            "warmup_ratio": 0.0,
        })
        config.save(run_dir / "config.json")
        job.run_dir = run_dir
        job.add("model_downloading", f"Downloading model data for {job.model}")
        job.add("model_download_complete", "Model data downloaded")
        job.add("training_data_downloading", "Downloading training data")
        job.add("training_data_download_complete", "Training data downloaded")

        def on_event(event: Event) -> None:
            if event.kind == "started":
                job.set("running")
                job.total_price = self.price_while_training
                total = int(getattr(event, "total_steps", 0))
                job.add("training_start", "Training started", step=0, total_steps=total)
            elif event.kind == "progress" and int(getattr(event, "step", 0)) % 2 == 0:
                job.add("checkpoint_save", f"Step {event.step} of {event.total_steps} done",  # type: ignore[attr-defined]
                        step=int(event.step), total_steps=int(event.total_steps))  # type: ignore[attr-defined]
            elif event.kind == "completed":
                step = int(getattr(event, "step", 0))
                job.add("training_complete", "Training completed", step=step, total_steps=step)

        supervisor = Supervisor(run_dir, on_event=on_event, env={"STUDIO_HOME": str(self.home / "studio-home"),
                                                                  "OMP_NUM_THREADS": "2"})
        with self._lock:
            if job.cancel_asked:
                return self._cancelled(job)
            job.supervisor = supervisor
            supervisor.start()
        outcome = supervisor.wait()
        if job.cancel_asked:
            return self._cancelled(job)
        if outcome.status != "completed":
            job.set("error")
            job.add("job_error", f"Training failed (the worker exited with {outcome.exit_code})", level="error")
            return None
        job.set("compressing")
        job.add("model_compressing", "Compressing output model")
        job.archive = _adapter_archive(final_adapter_dir(run_dir))
        job.add("model_compression_complete", "Model compression complete")
        job.set("uploading")
        job.add("model_uploading", "Uploading output model")
        job.add("model_upload_complete", "Model upload complete")
        job.set("completed")
        job.add("job_complete", "Fine-tuning job finished")
        return None

    def _cancelled(self, job: FakeJob) -> None:
        job.set("cancelled")
        job.add("job_stopped", "Job cancelled")

    def close(self) -> None:
        for job in list(self.jobs.values()):
            supervisor = job.supervisor
            if supervisor is not None and supervisor.running():
                supervisor.kill()
                with contextlib.suppress(Exception):
                    supervisor.wait(timeout=30)


def _adapter_archive(adapter: Path) -> bytes:
    """The PEFT adapter files, as Together packs a download: a tar, zstd-compressed (gzip without zstd)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name in ("adapter_config.json", "adapter_model.safetensors", "README.md"):
            if (adapter / name).is_file():
                tar.add(adapter / name, arcname=name)
    if shutil.which("zstd"):
        return subprocess.run(["zstd", "-q", "-c"], input=raw.getvalue(), capture_output=True, check=True).stdout
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz") as tar, tarfile.open(fileobj=io.BytesIO(raw.getvalue())) as src:
        for member in src.getmembers():
            tar.addfile(member, src.extractfile(member))
    return packed.getvalue()


def _handler(api: FakeTogether) -> type[JsonHandler]:
    class Handler(JsonHandler):
        def _authorized(self) -> bool:
            if self.headers.get("Authorization") == f"Bearer {api.key}":
                return True
            self._drain()
            self.send_json(401, {"error": {"message": "Invalid API key provided. You can find your API key at "
                                                      "https://api.together.xyz/settings/api-keys.",
                                           "type": "invalid_request_error", "param": None,
                                           "code": "invalid_api_key"}})
            return False

        def _drain(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:  # noqa: N802 - the names http.server calls
            parts = urlsplit(self.path)
            api.requests.append(("GET", parts.path))
            if not self._authorized():
                return
            query = {key: values[0] for key, values in parse_qs(parts.query).items()}
            path = parts.path
            if path == "/v1/fine-tunes":
                self.send_json(200, {"data": [job.detail() for job in api.jobs.values()]})
            elif path == "/v1/fine-tunes/models/limits":
                found = api.limits(query.get("model_name", ""))
                if found is None:
                    self.send_json(404, {"error": {"message": f"Model {query.get('model_name')} is not available "
                                                              "for fine-tuning", "type": "invalid_request_error"}})
                else:
                    self.send_json(200, found)
            elif path.startswith("/v1/fine-tunes/") and path.endswith("/events"):
                job = api.jobs.get(path.split("/")[3])
                self._job_or_404(job, lambda j: {"data": list(j.events)})
            elif path.startswith("/v1/fine-tunes/"):
                self._job_or_404(api.jobs.get(path.split("/")[3]), lambda j: j.detail())
            elif path == "/v1/finetune/download":
                job = api.jobs.get(query.get("ft_id", ""))
                if job is None or job.archive is None or query.get("checkpoint") != "adapter":
                    self.send_json(400, {"error": {"message": "Fine-tune job is not downloadable"}})
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Disposition", f'attachment; filename="{job.id}-adapter.tar.zst"')
                self.send_header("Content-Length", str(len(job.archive)))
                self.end_headers()
                self.wfile.write(job.archive)
            else:
                self.send_json(404, {"error": {"message": f"No route {path}"}})

        def do_POST(self) -> None:  # noqa: N802
            path = urlsplit(self.path).path
            api.requests.append(("POST", path))
            if not self._authorized():
                return
            if path == "/v1/files":
                self._drain()  # multipart: purpose, file_name, file_type, checksum
                file_id = api.new_file()
                self.send_response(302)
                self.send_header("Location", f"{api.url}/upload/{file_id}")
                self.send_header("X-Together-File-Id", file_id)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path.startswith("/v1/files/") and path.endswith("/preprocess"):
                self._drain()
                file_id = path.split("/")[3]
                stored = api.files.get(file_id)
                if stored is None:
                    self.send_json(404, {"error": {"message": f"File {file_id} not found"}})
                    return
                self.send_json(200, {"id": file_id, "object": "file", "bytes": stored.stat().st_size,
                                     "created_at": int(time.time()), "filename": stored.name, "FileType": "jsonl",
                                     "purpose": "fine-tune", "processing_status": "COMPLETED"})
            elif path == "/v1/fine-tunes/estimate-price":
                body = self.read_json()
                if body.get("training_file") not in api.files:
                    self.send_json(400, {"error": {"message": "Training file not found"}})
                    return
                self.send_json(200, {"estimation_available": True, "allowed_to_proceed": True,
                                     "estimated_total_price": api.estimate_usd, "estimated_train_token_count": 4096,
                                     "estimated_eval_token_count": 0, "user_limit": 100.0})
            elif path == "/v1/fine-tunes":
                body = self.read_json()
                if body.get("model") not in api.models or body.get("training_file") not in api.files:
                    self.send_json(400, {"error": {"message": "Invalid model or training file"}})
                    return
                self.send_json(200, api.create(body).detail())
            elif path.startswith("/v1/fine-tunes/") and path.endswith("/cancel"):
                self._drain()
                self._job_or_404(api.cancel(path.split("/")[3]), lambda j: j.detail())
            else:
                self._drain()
                self.send_json(404, {"error": {"message": f"No route {path}"}})

        def do_DELETE(self) -> None:  # noqa: N802
            path = urlsplit(self.path).path
            api.requests.append(("DELETE", path))
            if not self._authorized():
                return
            file_id = path.removeprefix("/v1/files/")
            if not path.startswith("/v1/files/") or api.files.pop(file_id, None) is None:
                self.send_json(404, {"error": {"message": f"File {file_id} not found"}})
                return
            api.deleted.append(file_id)
            self.send_json(200, {"id": file_id, "deleted": True})

        def do_PUT(self) -> None:  # noqa: N802
            path = urlsplit(self.path).path
            api.requests.append(("PUT", path))
            if not path.startswith("/upload/"):  # the upload URL is pre-signed: no Authorization header
                self.send_json(404, {"error": {"message": "No such upload"}})
                return
            file_id = path.removeprefix("/upload/")
            target = api.home / "files" / f"{file_id}.jsonl"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self._drain())
            api.files[file_id] = target
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _job_or_404(self, job: FakeJob | None, shape: Any) -> None:
            if job is None:
                self.send_json(404, {"error": {"message": "Fine-tune job not found"}})
            else:
                self.send_json(200, shape(job))

    return Handler


@contextmanager
def fake_together(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model_dir: Path) -> Iterator[FakeTogether]:
    """The fake serving on a free port, the SDK pointed at it ($TOGETHER_BASE_URL, which the runner's
    subprocess inherits), and a file keyring (no key saved) that subprocesses share. Every job's worker is
    killed at the end."""
    import os

    api = FakeTogether(models={MODEL: model_dir}, home=tmp_path / "together")
    api.home.mkdir(parents=True, exist_ok=True)
    with serving(_handler(api), daemon_threads=True) as server:
        api.url = url_of(server)
        monkeypatch.setenv(BASE_URL_ENV, api.url)
        monkeypatch.delenv("TOGETHER_API_KEY", raising=False)
        monkeypatch.setenv(KEYRING_FILE_ENV, str(tmp_path / "keyring.json"))
        monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "tests.engine.cloud.fake_runpod.FileKeyring")
        monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        monkeypatch.setattr("keyring.core._keyring_backend", FileKeyring())
        try:
            yield api
        finally:
            api.close()


def job_events(api: FakeTogether, job_id: str) -> list[str]:
    return [event["type"] for event in api.jobs[job_id].events]


__all__ = ["GOOD_KEY", "MODEL", "FakeTogether", "fake_together", "job_events"]
