"""The run agent: a small HTTP server on a rented machine that takes a handoff bundle, trains it with
Studio's own worker and lets the desktop app watch and steer the run from afar.

    python -m studio.engine.cloud.agent --port P --home DIR [--token T | $STUDIO_AGENT_TOKEN]

A rented pod exposes the port through its provider's HTTPS proxy (RunPod: https://POD_ID-P.proxy.runpod.net),
so the agent speaks plain HTTP and trusts nothing but the token: every request must carry
`Authorization: Bearer T` (compared in constant time), anything else gets 401 and changes nothing.

    GET  /status                 the run's state (empty, uploaded, running, completed, stopped, paused, ...)
    PUT  /bundle                 the handoff bundle as a zip (export_bundle(..., "x.zip")), size-capped
    POST /start                  start the worker on it, through the bundle's own launch.sh
    GET  /events?offset=N&wait=S events.jsonl from byte N, whole lines only; X-Studio-Offset says where to go on
    GET  /checkpoints            the sealed checkpoints (step, manifest sha256)
    GET  /checkpoints/STEP       one of them as a tar stream
    POST /control                {"command": "pause" | "pause_release" | "resume" | "stop"}
    GET  /result                 the results zip that handoff.import_results takes, once the run completed

Only the standard library and Studio's engine: the agent must start on a bare machine. Nothing it serves
lies outside its home: the only name a client passes is a step number, and the bundle is unpacked by the
handoff's rules for untrusted archives (no links, no paths that climb out, within a size budget).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import hmac
import json
import os
import shlex
import shutil
import signal
import stat
import sys
import tarfile
import threading
import time
import uuid
import zipfile
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO, Protocol
from urllib.parse import parse_qs, urlsplit

from studio.engine.control import ControlCommand
from studio.engine.errors import StudioError
from studio.engine.handoff import MANIFEST, read_manifest, result_files
from studio.engine.runs.folders import CONFIG_FILE, events_file
from studio.engine.training.checkpoints import COMPLETE, PREFIX, checkpoints_dir, list_checkpoints
from studio.engine.training.checkpoints import MANIFEST as CHECKPOINT_MANIFEST
from studio.engine.training.supervisor import Supervisor

TOKEN_ENV = "STUDIO_AGENT_TOKEN"
MIN_TOKEN_CHARS = 16
AGENT_HEADER = "X-Studio-Agent"  # on every answer, so a client tells the agent from the provider's proxy
STATE_HEADER = "X-Studio-State"
OFFSET_HEADER = "X-Studio-Offset"
SHA256_HEADER = "X-Studio-Sha256"
AGENT_PROTOCOL = "1"
DEFAULT_MAX_UPLOAD_BYTES = 32 * 1024**3  # the dataset (at most 10 GB) and a local base model
EVENTS_CHUNK_BYTES = 1 << 20
MAX_WAIT_S = 25.0  # a long poll stays well under the proxies' idle timeouts (RunPod's is 100 s)
CONTROL_COMMANDS = frozenset({"pause", "pause_release", "resume", "stop"})
RESTARTABLE = frozenset({"paused", "stopped", "interrupted"})  # "resume" starts a new worker from a checkpoint
FINISHED = frozenset({"completed", "stopped", "paused", "failed", "interrupted"})
# The worker beats every 10 s once it runs, but launch.sh may first download a large model in silence.
WORKER_HANG_LIMIT_S = 1800.0
SHUTDOWN_STOP_WAIT_S = 60.0


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class AgentError(StudioError):
    """A request the agent turns down, with the HTTP status it answers."""

    def __init__(self, status: HTTPStatus, what: str, why: str = "", actions: list[str] | None = None,
                 code: str = "agent_refused") -> None:
        super().__init__(what=what, why=why, actions=actions or [], code=code)
        self.status = status


class RunAgent:
    """One home, one bundle, one run: the state behind the HTTP handler (thread-safe)."""

    def __init__(self, home: Path, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
                 launch_args: list[str] | None = None) -> None:
        self.home = home.resolve()
        self.home.mkdir(parents=True, exist_ok=True)
        self.max_upload_bytes = max_upload_bytes
        self.launch_args = list(launch_args or [])
        self._lock = threading.RLock()
        self._uploading = threading.Lock()
        self._supervisor: Supervisor | None = None
        self._state = "empty"
        self._exit_code: int | None = None
        self._run_id: str | None = None
        self._result: Path | None = None
        self._reopen()

    # ---- where things are --------------------------------------------------------------------------

    @property
    def bundle_dir(self) -> Path:
        return self.home / "bundle"

    @property
    def run_dir(self) -> Path | None:
        return self.bundle_dir / "run" / self._run_id if self._run_id else None

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    def _incoming(self) -> Path:
        folder = self.home / ".incoming"
        folder.mkdir(exist_ok=True)
        return folder

    def _reopen(self) -> None:
        """An agent restarted on the same home finds its bundle again (the run's worker is not reattached)."""
        for leftover in (self.home / ".incoming", self.home / ".outgoing"):
            shutil.rmtree(leftover, ignore_errors=True)
        if (self.bundle_dir / MANIFEST).is_file():
            with contextlib.suppress(StudioError):
                self._run_id = _bundle_run_id(self.bundle_dir)
                self._state = _last_outcome(events_file(self.bundle_dir / "run" / self._run_id)) or "uploaded"

    def status(self) -> dict[str, Any]:
        with self._lock:
            run_dir = self.run_dir
            events = events_file(run_dir) if run_dir else None
            return {
                "state": self._state,
                "run_id": self._run_id,
                "exit_code": self._exit_code,
                "events_bytes": events.stat().st_size if events and events.is_file() else 0,
                "max_upload_bytes": self.max_upload_bytes,
                "free_disk_bytes": shutil.disk_usage(self.home).free,
            }

    # ---- the bundle --------------------------------------------------------------------------------

    def receive_bundle(self, body: Readable, length: int, sha256: str | None) -> dict[str, Any]:
        """Write the upload aside, check it, unpack it safely and only then put it in place."""
        if not self._uploading.acquire(blocking=False):
            raise AgentError(HTTPStatus.CONFLICT, "Another bundle is being uploaded to this machine right now.",
                               actions=["Wait for that upload to finish."], code="agent_busy")
        try:
            if self.state not in {"empty", "uploaded"}:
                raise AgentError(HTTPStatus.CONFLICT, "This machine has already started training its run.",
                                   why="A run agent trains one bundle; its run cannot be replaced once started.",
                                   actions=["Rent a new machine for another run."], code="agent_already_started")
            self._check_upload_size(length)
            folder = self._incoming()
            archive = folder / f"upload-{uuid.uuid4().hex}.zip"
            try:
                _receive(body, length, archive, sha256)
                root, run_id = unpack_bundle(archive, folder / f"unpack-{uuid.uuid4().hex}", self.max_upload_bytes)
                with self._lock:
                    if self.bundle_dir.exists():  # an earlier upload that was never started
                        shutil.rmtree(self.bundle_dir)
                    root.rename(self.bundle_dir)
                    self._run_id, self._state, self._result = run_id, "uploaded", None
            finally:
                shutil.rmtree(folder, ignore_errors=True)
            return self.status()
        finally:
            self._uploading.release()

    def _check_upload_size(self, length: int) -> None:
        if length > self.max_upload_bytes:
            raise AgentError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"The bundle is too large for this machine ({_gb(length)}).",
                why=f"The run agent takes bundles up to {_gb(self.max_upload_bytes)}.",
                actions=["Use a model from the Hugging Face Hub, which the machine downloads itself, "
                         "instead of a local model folder.", "Or train on a smaller dataset."],
                code="agent_bundle_too_large",
            )
        free = shutil.disk_usage(self.home).free
        if free < 2 * length:  # the archive and its unpacked copy
            raise AgentError(
                HTTPStatus.INSUFFICIENT_STORAGE,
                f"The rented machine has too little free disk for the bundle ({_gb(free)} free).",
                why=f"The bundle ({_gb(length)}) needs about twice its size while it is unpacked.",
                actions=["Rent the machine with a larger disk."],
                code="agent_disk_full",
            )

    # ---- the worker --------------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        with self._lock:
            if self._state != "uploaded":
                raise AgentError(HTTPStatus.CONFLICT, *_cannot_start(self._state), code="agent_cannot_start")
            self._launch()
            return self.status()

    def _launch(self) -> None:
        run_dir = self.run_dir
        assert run_dir is not None
        env = {
            "STUDIO_HOME": str(self.bundle_dir / ".studio"),  # the bundle keeps its own library, as launch.sh does
            "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        }
        command = ["bash", str(self.bundle_dir / "launch.sh"), *self.launch_args]
        supervisor = Supervisor(run_dir, env=env, command=command, hang_limit_s=WORKER_HANG_LIMIT_S)
        supervisor.start()
        self._supervisor, self._state, self._exit_code, self._result = supervisor, "running", None, None
        threading.Thread(target=self._wait, args=(supervisor,), name="agent-worker-wait", daemon=True).start()

    def _wait(self, supervisor: Supervisor) -> None:
        outcome = supervisor.wait()
        with self._lock:
            if self._supervisor is supervisor:
                self._state, self._exit_code = outcome.status, outcome.exit_code

    def control(self, command: str) -> dict[str, Any]:
        if command not in CONTROL_COMMANDS:
            raise AgentError(HTTPStatus.BAD_REQUEST, f"The run agent does not know the command {command!r}.",
                               why=f"It takes {', '.join(sorted(CONTROL_COMMANDS))}.", code="agent_bad_command")
        with self._lock:
            if command == "resume" and self._state in RESTARTABLE:
                self._launch()  # after pause_release or stop: a new worker resumes from the last checkpoint
                return {**self.status(), "sent": True}
            supervisor = self._supervisor
            if self._state != "running" or supervisor is None:
                raise AgentError(HTTPStatus.CONFLICT, f"The run is not training, so '{command}' cannot be sent.",
                                   why=f"Its state is '{self._state}'.", code="agent_not_running")
        if not supervisor.send(ControlCommand(command)):  # type: ignore[arg-type]  # checked against the set
            raise AgentError(HTTPStatus.CONFLICT, "The training process has just ended, so the command was not "
                               "sent.", code="agent_not_running")
        return {**self.status(), "sent": True}

    def shutdown(self) -> None:
        """The machine is going away: a training run is stopped (checkpoint sealed) before the agent exits."""
        with self._lock:
            supervisor = self._supervisor if self._state == "running" else None
        if supervisor is None:
            return
        supervisor.stop()
        deadline = time.monotonic() + SHUTDOWN_STOP_WAIT_S
        while supervisor.running() and time.monotonic() < deadline:
            time.sleep(0.2)
        supervisor.kill()

    # ---- what it serves ----------------------------------------------------------------------------

    def read_events(self, offset: int, wait_s: float) -> tuple[bytes, int, str]:
        """Whole lines of events.jsonl from `offset` (at most EVENTS_CHUNK_BYTES), the offset after them and
        the run's state; waits up to `wait_s` for a new line while the run trains."""
        deadline = time.monotonic() + min(max(wait_s, 0.0), MAX_WAIT_S)
        while True:
            state = self.state
            run_dir = self.run_dir
            data = _read_lines(events_file(run_dir), offset) if run_dir else b""
            if data or state != "running" or time.monotonic() >= deadline:
                return data, offset + len(data), state
            time.sleep(0.2)

    def checkpoints(self) -> list[dict[str, Any]]:
        run_dir = self.run_dir
        if run_dir is None:
            return []
        found = []
        for info in list_checkpoints(run_dir):  # a checkpoint is renamed into place only once sealed
            manifest = info.path / CHECKPOINT_MANIFEST
            if info.path.is_symlink() or not (info.path / COMPLETE).is_file() or not manifest.is_file():
                continue
            with contextlib.suppress(OSError):  # removed by retention meanwhile
                digest = hashlib.sha256(manifest.read_bytes()).hexdigest()
                found.append({"step": info.step, "eval_loss": info.eval_loss, "manifest_sha256": digest})
        return found

    def checkpoint_dir(self, step: int) -> Path:
        run_dir = self.run_dir
        path = checkpoints_dir(run_dir) / f"{PREFIX}{step:08d}" if run_dir else None
        if path is None or path.is_symlink() or not (path / COMPLETE).is_file() or not self._inside(path):
            raise AgentError(HTTPStatus.NOT_FOUND, f"The run has no sealed checkpoint at step {step}.",
                               why="It may have been removed by the run's checkpoint retention.",
                               code="agent_no_checkpoint")
        return path

    def result_archive(self) -> Path:
        """The zip import_results takes: the manifest and the run's results, built once the run completed."""
        with self._lock:
            if self._state != "completed":
                raise AgentError(HTTPStatus.CONFLICT, "The run has no final result to bring back yet.",
                                   why=f"Its state is '{self._state}'; a result exists once it completed.",
                                   actions=["Wait for the run to complete; sync its checkpoints meanwhile."],
                                   code="agent_result_not_ready")
            if self._result is not None and self._result.is_file():
                return self._result
            run_dir = self.run_dir
            assert run_dir is not None
            folder = self.home / ".outgoing"
            folder.mkdir(exist_ok=True)
            files = result_files(run_dir, run_dir)  # handoff's own checks: no links, safetensors, within budget
            staging = folder / f".result-{uuid.uuid4().hex}.zip"
            with zipfile.ZipFile(staging, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.write(self.bundle_dir / MANIFEST, MANIFEST)
                for relative in files:
                    archive.write(run_dir / relative, f"run/{run_dir.name}/{relative.as_posix()}")
            self._result = staging.replace(folder / "result.zip")
            return self._result

    def _inside(self, path: Path) -> bool:
        return path.resolve().is_relative_to(self.home)


# ---- unpacking an untrusted bundle -------------------------------------------------------------------

def unpack_bundle(archive_path: Path, into: Path, budget: int) -> tuple[Path, str]:
    """Extract a bundle zip into `into` by the handoff's rules for untrusted archives: no links, no absolute
    names or '..', no more than `budget` bytes. Returns the bundle's root folder and its run's id."""
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError):
        raise _bundle_invalid("The upload is not a zip file.") from None
    with archive:
        members = [(info, _member_parts(info)) for info in archive.infolist()]
        if not members:
            raise _bundle_invalid("The zip file is empty.")
        if sum(info.file_size for info, _ in members) > budget:
            raise AgentError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "The bundle unpacks to more than this machine "
                               f"takes ({_gb(budget)}).", code="agent_bundle_too_large")
        into.mkdir(parents=True)
        for info, parts in members:
            target = into.joinpath(*parts)
            try:
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, target.open("xb") as out:
                    shutil.copyfileobj(source, out)
            except (zipfile.BadZipFile, OSError) as exc:  # a name given twice, a file where a folder goes
                raise _bundle_invalid(f"Its file {info.filename} could not be unpacked ({exc}).") from None
    tops = {parts[0] for _, parts in members}
    root = into / next(iter(tops)) if len(tops) == 1 and (into / next(iter(tops)) / MANIFEST).is_file() else into
    return root, _bundle_run_id(root)


def _member_parts(info: zipfile.ZipInfo) -> tuple[str, ...]:
    name = info.filename
    parts = PurePosixPath(name).parts
    unsafe = (stat.S_ISLNK(info.external_attr >> 16) or name.startswith("/") or "\\" in name or not parts
              or ".." in parts or ":" in parts[0])
    if not unsafe:
        return parts
    link = stat.S_ISLNK(info.external_attr >> 16)
    raise AgentError(
        HTTPStatus.BAD_REQUEST,
        f"The bundle contains {'a link' if link else 'a path outside its folder'} ({name}), so it was refused.",
        why="A bundle may hold only its own files; a link or a path like ../x could reach any file on this machine.",
        actions=["Export the run again with Studio (`studio handoff export RUN --out run.zip`) and upload that."],
        code="agent_bundle_unsafe",
    )


def _bundle_run_id(root: Path) -> str:
    manifest = read_manifest(root / MANIFEST, root)  # its run id is a plain name, never a path
    if not (root / "run" / manifest.source_run_id / CONFIG_FILE).is_file() or not (root / "launch.sh").is_file():
        raise _bundle_invalid("It has no run settings or no launch.sh where its manifest says.")
    return manifest.source_run_id


def _bundle_invalid(why: str) -> AgentError:
    return AgentError(
        HTTPStatus.BAD_REQUEST, "The upload is not a Studio bundle this machine can train.", why=why,
        actions=["Export the run again with Studio (`studio handoff export RUN --out run.zip`) and upload that."],
        code="agent_bundle_invalid",
    )


def _receive(body: Readable, length: int, target: Path, sha256: str | None) -> None:
    """Copy exactly `length` bytes to `target` (written aside and renamed, so never seen half-done)."""
    digest = hashlib.sha256()
    partial = target.with_name(target.name + ".part")
    left = length
    with partial.open("wb") as out:
        while left:
            block = body.read(min(left, 1 << 20))
            if not block:
                break
            digest.update(block)
            out.write(block)
            left -= len(block)
        out.flush()
        os.fsync(out.fileno())
    if left:
        raise AgentError(HTTPStatus.BAD_REQUEST, "The upload was cut short, so it was not kept.",
                           why=f"{left:,} of its {length:,} bytes never arrived.",
                           actions=["Upload the bundle again."], code="agent_upload_incomplete")
    if sha256 and not hmac.compare_digest(digest.hexdigest(), sha256.strip().lower()):
        raise AgentError(HTTPStatus.BAD_REQUEST, "The upload arrived damaged, so it was not kept.",
                           why="Its checksum does not match the one Studio sent with it.",
                           actions=["Upload the bundle again."], code="agent_upload_damaged")
    partial.replace(target)


def _read_lines(path: Path, offset: int) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(offset)
            data = handle.read(EVENTS_CHUNK_BYTES)
    except OSError:
        return b""
    end = data.rfind(b"\n")
    return data[: end + 1] if end >= 0 else b""


def _last_outcome(path: Path) -> str | None:
    """How a run ended by its record, for an agent restarted after its worker finished."""
    outcome = None
    with contextlib.suppress(OSError), path.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            with contextlib.suppress(ValueError, AttributeError):
                kind = json.loads(line).get("event")
                if kind in {"completed", "stopped", "paused"}:
                    outcome = str(kind)
                elif kind == "error":
                    outcome = "failed"
    return outcome


def _cannot_start(state: str) -> tuple[str, str]:
    if state == "empty":
        return "There is no bundle on this machine to train yet.", "Upload the bundle first."
    if state == "running":
        return "The run is already training.", ""
    return "The run has already trained on this machine.", f"Its state is '{state}'."


def _gb(size: int) -> str:
    return f"{size / 1024**3:.2f} GB"


def tar_stream(folder: Path, out: BinaryIO) -> None:
    """Write `folder` (regular files only, links left out) to `out` as an uncompressed tar stream."""
    with tarfile.open(fileobj=out, mode="w|") as archive:
        for path in [folder, *sorted(folder.rglob("*"))]:
            if path.is_symlink() or not (path.is_file() or path.is_dir()):
                continue
            archive.add(path, arcname=path.relative_to(folder.parent).as_posix(), recursive=False)


# ---- HTTP ----------------------------------------------------------------------------------------------

class AgentServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], agent: RunAgent, token: str) -> None:
        super().__init__(address, AgentHandler)
        self.agent = agent
        self.expected = f"Bearer {token}".encode()


class AgentHandler(BaseHTTPRequestHandler):
    server: AgentServer
    timeout = 120  # a client that stops sending mid-upload does not hold a thread for ever
    server_version = "StudioRunAgent/" + AGENT_PROTOCOL

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_POST(self) -> None:
        self._handle("POST")

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"agent: {self.address_string()} {format % args}\n")

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        try:
            if not self._authorized():
                raise AgentError(HTTPStatus.UNAUTHORIZED, "Wrong or missing token.",
                                   why="Every request to the run agent must carry its token.",
                                   code="agent_wrong_token")
            self._route(method, url.path, parse_qs(url.query))
        except AgentError as refusal:
            self._send_json(refusal.status, {"error": _error_dict(refusal)})
        except StudioError as error:  # the handoff's own refusals (a bad manifest, an unsafe adapter)
            self._send_json(HTTPStatus.BAD_REQUEST, {"error": _error_dict(error)})
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as exc:  # a bug or a full disk: the client still gets an answer in words
            sys.stderr.write(f"agent: {method} {url.path} failed: {type(exc).__name__}: {exc}\n")
            failure = StudioError(what="The run agent on the rented machine failed to answer this request.",
                                why=f"{type(exc).__name__}: {exc}",
                                actions=["Try again; if it keeps failing, stop the run and terminate the machine."],
                                code="agent_internal_error")
            with contextlib.suppress(OSError):
                self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": _error_dict(failure)})

    def _authorized(self) -> bool:
        given = self.headers.get("Authorization", "").encode("utf-8", "replace")
        return hmac.compare_digest(given, self.server.expected)

    def _route(self, method: str, path: str, query: dict[str, list[str]]) -> None:
        agent = self.server.agent
        route = (method, path.rstrip("/") or "/")
        if route == ("GET", "/status"):
            self._send_json(HTTPStatus.OK, agent.status())
        elif route == ("PUT", "/bundle"):
            length = _int(self.headers.get("Content-Length"), "Content-Length", HTTPStatus.LENGTH_REQUIRED)
            self._send_json(HTTPStatus.CREATED, agent.receive_bundle(self.rfile, length,
                                                                     self.headers.get(SHA256_HEADER)))
        elif route == ("POST", "/start"):
            self._send_json(HTTPStatus.ACCEPTED, agent.start())
        elif route == ("POST", "/control"):
            self._send_json(HTTPStatus.ACCEPTED, agent.control(str(self._json_body().get("command", ""))))
        elif route == ("GET", "/events"):
            offset = _int(_first(query, "offset", "0"), "offset", HTTPStatus.BAD_REQUEST)
            wait = float(_int(_first(query, "wait", "0"), "wait", HTTPStatus.BAD_REQUEST))
            data, next_offset, state = agent.read_events(offset, wait)
            self._send_bytes(data, "application/x-ndjson", {OFFSET_HEADER: str(next_offset), STATE_HEADER: state})
        elif route == ("GET", "/checkpoints"):
            self._send_json(HTTPStatus.OK, {"checkpoints": agent.checkpoints(), "state": agent.state})
        elif method == "GET" and path.startswith("/checkpoints/"):
            step = _int(path.removeprefix("/checkpoints/"), "step", HTTPStatus.NOT_FOUND)
            self._send_stream(agent.checkpoint_dir(step))
        elif route == ("GET", "/result"):
            self._send_file(agent.result_archive(), "application/zip")
        else:
            raise AgentError(HTTPStatus.NOT_FOUND, f"The run agent has no {method} {path}.", code="agent_not_found")

    def _json_body(self) -> dict[str, Any]:
        length = _int(self.headers.get("Content-Length", "0"), "Content-Length", HTTPStatus.BAD_REQUEST)
        if length > 64 * 1024:
            raise AgentError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "The request is too large.")
        try:
            data = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise AgentError(HTTPStatus.BAD_REQUEST, "The request is not a JSON object.", code="agent_bad_request")
        return data

    def _headers(self, status: HTTPStatus, content_type: str, length: int | None,
                 extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header(AGENT_HEADER, AGENT_PROTOCOL)
        extra = extra or {}
        if STATE_HEADER not in extra:  # /events sends the state it read with the lines
            self.send_header(STATE_HEADER, self.server.agent.state)
        self.send_header("Content-Type", content_type)
        self.send_header("Cache-Control", "no-store")
        if length is not None:
            self.send_header("Content-Length", str(length))
        if status == HTTPStatus.UNAUTHORIZED:
            self.send_header("WWW-Authenticate", 'Bearer realm="studio-run-agent"')
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()

    def _send_json(self, status: HTTPStatus, data: dict[str, Any]) -> None:
        self._send_bytes(json.dumps(data).encode(), "application/json", status=status)

    def _send_bytes(self, data: bytes, content_type: str, extra: dict[str, str] | None = None,
                    status: HTTPStatus = HTTPStatus.OK) -> None:
        self._headers(status, content_type, len(data), extra)
        self.wfile.write(data)

    def _send_file(self, path: Path, content_type: str) -> None:
        with path.open("rb") as handle:
            self._headers(HTTPStatus.OK, content_type, os.fstat(handle.fileno()).st_size)
            shutil.copyfileobj(handle, self.wfile)

    def _send_stream(self, folder: Path) -> None:
        """A tar of unknown length: the connection closes at its end (HTTP/1.0), and the client checks the
        checkpoint against its manifest, so a stream cut short is never taken for a whole one."""
        self._headers(HTTPStatus.OK, "application/x-tar", None)
        self.close_connection = True
        try:
            tar_stream(folder, self.wfile)  # type: ignore[arg-type]  # a socket file, written in blocks
        except (FileNotFoundError, NotADirectoryError) as exc:  # retention removed it meanwhile: cut the stream
            sys.stderr.write(f"agent: checkpoint {folder.name} went away while it was sent: {exc}\n")


def _first(query: dict[str, list[str]], name: str, default: str) -> str:
    return query.get(name, [default])[0]


def _int(text: str | None, name: str, status: HTTPStatus) -> int:
    if text is None or not text.isdigit():
        raise AgentError(status, f"The request's {name} is missing or not a whole number.", code="agent_bad_request")
    return int(text)


def _error_dict(error: StudioError) -> dict[str, Any]:
    return {"code": error.code, "what": error.what, "why": error.why, "actions": list(error.actions)}


# ---- the command ----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m studio.engine.cloud.agent",
                                     description="Studio's run agent: train a handoff bundle, watched over HTTP.")
    parser.add_argument("--port", type=int, required=True, help="port to listen on (0: any free port)")
    parser.add_argument("--host", default="0.0.0.0", help="address to listen on (default: all)")
    parser.add_argument("--token", default=None, help=f"the secret clients must send (better: ${TOKEN_ENV})")
    parser.add_argument("--home", type=Path, required=True, help="the only folder the agent reads and writes")
    parser.add_argument("--max-upload-gb", type=float, default=DEFAULT_MAX_UPLOAD_BYTES / 1024**3)
    parser.add_argument("--launch-args", default="", help="accelerate launch options for launch.sh ('--cpu')")
    args = parser.parse_args(argv)
    token = args.token or os.environ.get(TOKEN_ENV, "")
    os.environ.pop(TOKEN_ENV, None)  # the training process never sees it
    if len(token) < MIN_TOKEN_CHARS:
        sys.stderr.write(f"The run agent needs a token of at least {MIN_TOKEN_CHARS} characters "
                         f"(--token or ${TOKEN_ENV}).\n")
        return 2
    agent = RunAgent(args.home, int(args.max_upload_gb * 1024**3), shlex.split(args.launch_args))
    server = AgentServer((args.host, args.port), agent, token)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: threading.Thread(target=server.shutdown).start())
    sys.stdout.write(json.dumps({"agent": "ready", "port": server.server_address[1]}) + "\n")
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        agent.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
