"""The app's side of a rented run: talks to the run agent (cloud/agent.py) on the rented machine over HTTP.

It uploads the handoff bundle, starts the worker, follows events.jsonl from a byte offset (so a dropped
connection resumes where it left off, with no event lost or repeated), copies each checkpoint back once it is
sealed and checked against its manifest, passes control commands and fetches the final results, which
handoff.import_results then brings into the library. Every failure is a StudioError in plain words: a wrong
token, a machine that cannot be reached, and one that was reached before and has gone.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from studio.engine.cloud.agent import AGENT_HEADER, CONTROL_COMMANDS, FINISHED, OFFSET_HEADER, SHA256_HEADER
from studio.engine.errors import StudioError
from studio.engine.events import Event, EventParseError, parse_event
from studio.engine.handoff import IMPORT_BUDGET_BYTES, ImportResult, import_results
from studio.engine.training.checkpoints import PREFIX, CheckpointInfo, checkpoints_dir, list_checkpoints, verify

CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 60.0
FOLLOW_RETRIES = 5  # a dropped connection is retried this many times (with a growing pause) before giving up
BLOCK = 1 << 20
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class AgentStatus:
    state: str  # empty, uploaded, running, completed, stopped, paused, failed, interrupted
    run_id: str | None = None
    exit_code: int | None = None
    events_bytes: int = 0

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


@dataclass(frozen=True)
class EventBatch:
    """Events read from `offset` up to `next_offset`; pass next_offset as `since` to read on."""

    events: list[Event]
    offset: int
    next_offset: int
    state: str
    bad_lines: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RemoteCheckpoint:
    step: int
    manifest_sha256: str
    eval_loss: float | None = None


class RemoteRun:
    """One run on one rented machine, reached at `base_url` with the agent's token."""

    def __init__(self, base_url: str, token: str, session: requests.Session | None = None,
                 read_timeout_s: float = READ_TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._session = session or requests.Session()
        self._read_timeout = read_timeout_s
        self._reached = False  # once the agent has answered, silence means the machine went away

    # ---- the run -----------------------------------------------------------------------------------

    def status(self) -> AgentStatus:
        data = self._json("GET", "/status")
        return AgentStatus(str(data.get("state", "")), data.get("run_id"), data.get("exit_code"),
                           int(data.get("events_bytes") or 0))

    def upload(self, bundle: Path, on_progress: ProgressCallback | None = None) -> str:
        """Send a bundle (a folder or zip from handoff.export_bundle); returns its run's id."""
        limits = self._json("GET", "/status")  # a wrong token or a dead machine is told before a large upload
        bundle = Path(bundle)
        with tempfile.TemporaryDirectory() as tmp:
            archive = bundle
            if bundle.is_dir():
                archive = Path(shutil.make_archive(str(Path(tmp) / bundle.name), "zip", bundle.parent, bundle.name))
            size = archive.stat().st_size
            _check_room(size, limits)  # refused before sending: the agent would close the connection mid-upload
            with archive.open("rb") as handle:
                body = _Upload(handle, size, on_progress)
                data = self._json("PUT", "/bundle", data=body, timeout_read=max(self._read_timeout, 600.0),
                                  headers={SHA256_HEADER: _sha256(archive), "Content-Type": "application/zip",
                                           "Content-Length": str(size)})
        return str(data.get("run_id"))

    def start(self) -> AgentStatus:
        self._json("POST", "/start")
        return self.status()

    def control(self, command: str) -> None:
        """pause, pause_release, resume or stop, through the worker's own control channel."""
        if command not in CONTROL_COMMANDS:
            raise ValueError(f"unknown command {command!r}")
        self._json("POST", "/control", json={"command": command})

    # ---- events ------------------------------------------------------------------------------------

    def events(self, since: int = 0, wait_s: int = 0) -> EventBatch:
        """The events recorded after byte `since` (whole lines only); with `wait_s`, the agent holds the
        request up to that long for a new event while the run trains."""
        response = self._request("GET", "/events", params={"offset": since, "wait": wait_s},
                                 timeout_read=self._read_timeout + wait_s)
        events: list[Event] = []
        bad: list[str] = []
        for line in response.content.splitlines():
            if not line.strip():
                continue
            try:
                events.append(parse_event(line))
            except EventParseError:
                bad.append(line.decode("utf-8", "replace"))
        next_offset = int(response.headers.get(OFFSET_HEADER, since + len(response.content)))
        return EventBatch(events, since, next_offset, response.headers.get("X-Studio-State", ""), bad)

    def follow(self, since: int = 0, wait_s: int = 10, retries: int = FOLLOW_RETRIES) -> Iterator[EventBatch]:
        """Batches of events until the run has finished and every event is read. A dropped connection is
        retried from the last offset; after `retries` failures in a row the error is raised."""
        failures = 0
        while True:
            try:
                batch = self.events(since, wait_s)
            except StudioError as error:
                if error.code not in {"remote_machine_gone", "remote_unreachable"} or failures >= retries:
                    raise
                failures += 1
                time.sleep(min(2.0**failures, 30.0))
                continue
            failures = 0
            since = batch.next_offset
            if batch.events or batch.bad_lines:
                yield batch
            if batch.state in FINISHED and batch.next_offset == batch.offset:
                return

    # ---- checkpoints and the result ----------------------------------------------------------------

    def checkpoints(self) -> list[RemoteCheckpoint]:
        listed = self._json("GET", "/checkpoints").get("checkpoints") or []
        return [RemoteCheckpoint(int(item["step"]), str(item["manifest_sha256"]), item.get("eval_loss"))
                for item in listed if isinstance(item, dict)]

    def sync_checkpoints(self, run_dir: Path) -> list[CheckpointInfo]:
        """Copy the sealed checkpoints this run's folder does not have yet into run_dir/checkpoints; each is
        checked against its manifest before it is put in place. Returns those copied now. One removed on the
        machine meanwhile (its retention) is skipped; one that arrives damaged is discarded and retried at the
        next sync."""
        have = {info.step for info in list_checkpoints(run_dir)}
        synced = []
        for remote in self.checkpoints():
            if remote.step in have:
                continue
            info = self._fetch_checkpoint(remote, run_dir)
            if info is not None:
                synced.append(info)
        return synced

    def _fetch_checkpoint(self, remote: RemoteCheckpoint, run_dir: Path) -> CheckpointInfo | None:
        name = f"{PREFIX}{remote.step:08d}"
        folder = checkpoints_dir(run_dir)
        folder.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".incoming-{name}-", dir=folder))  # not step-*: never listed
        try:
            try:
                response = self._request("GET", f"/checkpoints/{remote.step}", stream=True)
            except StudioError as error:
                if error.code == "agent_no_checkpoint":
                    return None
                raise
            with response:
                _extract_checkpoint(response, staging, name)
            checkpoint = staging / name
            manifest = checkpoint / "manifest.json"
            if verify(checkpoint) is not None or _sha256(manifest) != remote.manifest_sha256:
                return None
            target = folder / name
            if target.exists():
                shutil.rmtree(target)
            checkpoint.rename(target)
            return CheckpointInfo(remote.step, target, remote.eval_loss, remote.manifest_sha256)
        except (tarfile.TarError, OSError, requests.RequestException, urllib3.exceptions.HTTPError):
            return None  # cut short on the way: the next sync tries again
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def fetch_result(self, into: Path) -> Path:
        """Download the finished run's results zip into the folder `into`; returns the zip, which
        handoff.import_results takes."""
        into = Path(into)
        into.mkdir(parents=True, exist_ok=True)
        target = into / "result.zip"
        partial = into / ".result.zip.part"
        response = self._request("GET", "/result", stream=True)
        expected = int(response.headers.get("Content-Length", "-1"))
        written = 0
        try:
            with response, partial.open("wb") as out:
                for block in response.iter_content(BLOCK):
                    out.write(block)
                    written += len(block)
        except requests.RequestException as exc:
            partial.unlink(missing_ok=True)
            raise self._gone(exc) from None
        if expected >= 0 and written != expected:
            partial.unlink(missing_ok=True)
            raise self._gone(f"the download ended after {written:,} of {expected:,} bytes")
        return partial.replace(target)

    def import_result(self, into: Path) -> ImportResult:
        """Fetch the result and bring it into the library as a new version of the run it came from."""
        return import_results(self.fetch_result(into))

    # ---- HTTP --------------------------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = self._request(method, path, **kwargs)
        try:
            data = response.json()
        except ValueError:
            data = None
        return data if isinstance(data, dict) else {}

    def _request(self, method: str, path: str, timeout_read: float | None = None,
                 **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self._token}", **kwargs.pop("headers", {})}
        timeout = (CONNECT_TIMEOUT_S, timeout_read or self._read_timeout)
        try:
            response = self._session.request(method, self.base_url + path, headers=headers, timeout=timeout,
                                             **kwargs)
        except requests.RequestException as exc:
            raise self._gone(exc) if self._reached else self._unreachable(exc) from None
        from_agent = AGENT_HEADER in response.headers
        self._reached = self._reached or from_agent
        if response.status_code < 400:
            return response
        if response.status_code == 401 and from_agent:
            raise _wrong_token()
        if not from_agent:  # the provider's proxy answers for a machine that is not (or no longer) there
            reason = f"the provider's gateway answered {response.status_code} {response.reason}"
            raise self._gone(reason) if self._reached else self._unreachable(reason)
        raise _agent_error(response)

    def _host(self) -> str:
        return urlsplit(self.base_url).netloc or self.base_url

    def _unreachable(self, reason: object) -> StudioError:
        return StudioError(
            what=f"Studio cannot reach the rented machine at {self._host()}.",
            why=f"No Studio run agent answered: {_reason(reason)}.",
            actions=["Check your internet connection.",
                     "The machine may still be starting (pulling its image, installing its libraries): "
                     "try again in a minute.",
                     "Check in the provider's console that the machine is running and exposes the agent's port "
                     "over HTTP."],
            code="remote_unreachable",
        )

    def _gone(self, reason: object) -> StudioError:
        return StudioError(
            what="The rented machine stopped answering.",
            why=f"Its run agent answered earlier; now {_reason(reason)}. The provider may have taken the "
                "machine back (a spot machine can be reclaimed at any time), or it was terminated.",
            actions=["The checkpoints synced so far are in the run's folder: the run can resume from the last one.",
                     "Check the provider's console, and terminate the machine if it is still listed so that it "
                     "stops billing."],
            code="remote_machine_gone",
        )


class _Upload:
    """The bundle as a request body of known length (requests sends its Content-Length), reporting progress."""

    def __init__(self, handle: Any, size: int, on_progress: ProgressCallback | None) -> None:
        self._handle = handle
        self._size = size
        self._sent = 0
        self._on_progress = on_progress

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        block: bytes = self._handle.read(size if size and size > 0 else BLOCK)
        self._sent += len(block)
        if self._on_progress is not None and block:
            self._on_progress(self._sent, self._size)
        return block


def _check_room(size: int, limits: dict[str, Any]) -> None:
    most, free = limits.get("max_upload_bytes"), limits.get("free_disk_bytes")
    if isinstance(most, int) and size > most:
        raise StudioError(
            what=f"The bundle is too large to send to the rented machine ({size / 1024**3:.2f} GB).",
            why=f"Its run agent takes bundles up to {most / 1024**3:.2f} GB.",
            actions=["Use a model from the Hugging Face Hub, which the machine downloads itself, instead of a local "
                     "model folder.", "Or train on a smaller dataset."],
            code="agent_bundle_too_large",
        )
    if isinstance(free, int) and free < 2 * size:
        raise StudioError(
            what=f"The rented machine has too little free disk for the bundle ({free / 1024**3:.2f} GB free).",
            why=f"The bundle ({size / 1024**3:.2f} GB) needs about twice its size there while it is unpacked.",
            actions=["Rent the machine with a larger disk."],
            code="agent_disk_full",
        )


def _extract_checkpoint(response: requests.Response, into: Path, name: str) -> None:
    """Unpack a checkpoint's tar stream: regular files and folders under `name` only, within the budget."""
    total = 0
    with tarfile.open(fileobj=response.raw, mode="r|") as archive:
        for member in archive:
            parts = PurePosixPath(member.name).parts
            if (not parts or parts[0] != name or ".." in parts or member.name.startswith("/")
                    or not (member.isfile() or member.isdir())):
                raise tarfile.TarError(f"unexpected entry {member.name!r}")
            target = into.joinpath(*parts)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            total += member.size
            if total > IMPORT_BUDGET_BYTES:
                raise tarfile.TarError("the checkpoint is larger than a LoRA run's checkpoint can be")
            source = archive.extractfile(member)
            if source is None:
                raise tarfile.TarError(f"unreadable entry {member.name!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            with source, target.open("xb") as out:
                shutil.copyfileobj(source, out, BLOCK)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with contextlib.suppress(OSError), path.open("rb") as handle:
        for block in iter(lambda: handle.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def _reason(reason: object) -> str:
    if isinstance(reason, requests.ConnectionError):
        return "the connection failed (refused, or the address does not resolve)"
    if isinstance(reason, requests.Timeout):
        return "it did not answer in time"
    if isinstance(reason, requests.RequestException):
        return f"the connection broke ({type(reason).__name__})"
    return str(reason)


def _wrong_token() -> StudioError:
    return StudioError(
        what="The rented machine refused Studio's token for this run.",
        why="Its run agent was started with a different token, so it answered 401 (not allowed) and did nothing.",
        actions=["Check that Studio uses the token the machine was started with (the pod's STUDIO_AGENT_TOKEN).",
                 "If the machine was restarted with a new token, connect again with that one."],
        code="remote_wrong_token",
    )


def _agent_error(response: requests.Response) -> StudioError:
    """The agent's own refusal (a bundle it will not take, a run not started yet), in its words."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {}
    actions = error.get("actions")
    return StudioError(
        what=str(error.get("what") or f"The rented machine refused the request ({response.status_code})."),
        why=str(error.get("why") or ""),
        actions=[str(action) for action in actions] if isinstance(actions, list) else [],
        code=str(error.get("code") or "remote_refused"),
    )
