"""A fake Hugging Face Hub on 127.0.0.1 that speaks the endpoints huggingface_hub's downloads use.

    GET  /api/models/{repo}[/revision/{rev}]   model_info (siblings with sizes when ?blobs=true)
    GET  /api/models/{repo}/tree/{rev}          list_repo_tree (what snapshot_download lists)
    HEAD /{repo}/resolve/{rev}/{file}           file metadata: X-Repo-Commit, ETag, Content-Length
    GET  /{repo}/resolve/{rev}/{file}           the bytes, with Range support (206 + Content-Range)

Errors carry the Hub's X-Error-Code header (RepoNotFound, RevisionNotFound, EntryNotFound, GatedRepo) and
the Hub's 401 message for a token it does not know. Faults for tests: `drop_once` closes the connection
mid-file once, `chunk_delay_s` slows every body, `stall` accepts some requests and never answers, and
`on_sent` is called with the bytes of each chunk sent. Every request is logged in `requests`.

`use_fake_hub(monkeypatch, hub, tmp_path)` points huggingface_hub at it (endpoint, an empty cache, no
offline mode, no token anywhere, an in-memory keyring), for the tests and for subprocesses.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest

CHUNK = 64 * 1024
INVALID_TOKEN = "Invalid credentials in Authorization header"


@dataclass
class Repo:
    repo_id: str
    files: dict[str, Path]  # path in the repo -> the local file served
    sha: str  # the commit "main" points to
    gated: bool = False
    private: bool = False
    older: set[str] = field(default_factory=set)  # earlier commits, still downloadable by their hash

    def commit(self, revision: str) -> str:
        return self.sha if revision == "main" else revision

    def publish(self) -> str:
        """A new commit on main (same files), as when the authors push while someone downloads."""
        self.older.add(self.sha)
        self.sha = hashlib.sha1(self.sha.encode()).hexdigest()
        return self.sha

    def etag(self, name: str) -> str:
        stat = self.files[name].stat()
        return hashlib.sha256(f"{self.repo_id}/{name}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()

    def blob_id(self, name: str) -> str:
        return hashlib.sha1(self.etag(name).encode()).hexdigest()

    def entry(self, name: str) -> dict[str, Any]:
        size = self.files[name].stat().st_size
        return {"size": size, "lfs": {"size": size, "sha256": self.etag(name), "oid": self.etag(name),
                                      "pointerSize": 134}}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    range: str | None
    token: str | None


@dataclass
class FakeHub:
    tokens: set[str] = field(default_factory=lambda: {"hf_good"})
    repos: dict[str, Repo] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    drop_once: dict[str, int] = field(default_factory=dict)  # file name -> offset where the connection drops
    chunk_delay_s: float = 0.0
    rate_bytes_s: float = 0.0  # the link's bandwidth, shared by every connection (0: as fast as loopback goes)
    stall: str | None = None  # requests whose path contains this get no answer ("/": all of them)
    on_sent: Callable[[int], None] | None = None

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._released = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._link_free_at = 0.0  # when the paced link has sent everything handed to it so far

    @property
    def url(self) -> str:
        assert self._server is not None, "start the hub first"
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def add_repo(self, repo_id: str, folder: Path, *, gated: bool = False, private: bool = False,
                 skip: tuple[str, ...] = ()) -> Repo:
        """Serve every file under `folder` (subfolders too) as the repo's files."""
        files = {path.relative_to(folder).as_posix(): path for path in sorted(folder.rglob("*"))
                 if path.is_file() and path.name not in skip}
        repo = Repo(repo_id, files, hashlib.sha1(repo_id.encode()).hexdigest(), gated=gated, private=private)
        self.repos[repo_id] = repo
        return repo

    def pace(self, n_bytes: int) -> None:
        """Wait until a link of `rate_bytes_s` would have carried these bytes after everything before them."""
        with self._lock:
            now = time.monotonic()
            self._link_free_at = max(self._link_free_at, now) + n_bytes / self.rate_bytes_s
            wait = self._link_free_at - now
        if wait > 0:
            self._closing.wait(wait)

    def fetched(self, name: str) -> list[Request]:
        """The GET requests for a file's bytes."""
        return [r for r in self.requests if r.method == "GET" and "/resolve/" in r.path and r.path.endswith(name)]

    def __enter__(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            server_hub = hub

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name="fake-hub", daemon=True).start()
        return self

    def release(self) -> None:
        """Stop stalling: the stalled requests are dropped (the client sees a closed connection)."""
        self.stall = None
        self._released.set()

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def log(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up (a cancel) is normal
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the client's
    # delayed ACK add 40 ms to every small response (real servers set it too).
    disable_nagle_algorithm = True
    server_hub: FakeHub

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def do_GET(self) -> None:
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        hub = self.server_hub
        auth = self.headers.get("Authorization", "")
        token = auth.removeprefix("Bearer ").strip() or None
        path = unquote(urlsplit(self.path).path)
        hub.log(Request(self.command, path, self.headers.get("Range"), token))
        if hub.stall is not None and hub.stall in path:
            hub._released.wait()
            self.close_connection = True
            return
        if token is not None and token not in hub.tokens:
            return self._error(401, None, INVALID_TOKEN)
        authed = token is not None
        if path.startswith("/api/models/"):
            return self._api(path.removeprefix("/api/models/"), authed, "blobs=" in self.path)
        parts = path.strip("/").split("/")
        if len(parts) >= 5 and parts[2] == "resolve":
            return self._file("/".join(parts[:2]), parts[3], "/".join(parts[4:]), authed, body)
        self._error(404, None, "Not found")

    def _repo(self, repo_id: str, authed: bool) -> Repo | None:
        repo = self.server_hub.repos.get(repo_id)
        if repo is None or (repo.private and not authed):
            self._error(404 if authed else 401, "RepoNotFound", "Repository not found")
            return None
        return repo

    def _revision(self, repo: Repo, revision: str) -> bool:
        if revision in ("main", repo.sha) or revision in repo.older:
            return True
        self._error(404, "RevisionNotFound", "Invalid rev id", repo)
        return False

    def _api(self, rest: str, authed: bool, blobs: bool) -> None:
        owner, name, *more = rest.split("/")
        repo = self._repo(f"{owner}/{name}", authed)
        if repo is None:
            return
        if more and more[0] == "tree":
            if self._revision(repo, more[1]):
                tree = [{"type": "file", "path": n, "oid": repo.blob_id(n), **repo.entry(n)} for n in repo.files]
                self._json(tree, repo)
            return
        if more and not (more[0] == "revision" and self._revision(repo, more[1])):
            return
        commit = repo.commit(more[1]) if more else repo.sha
        siblings = [{"rfilename": n, **({"blobId": repo.blob_id(n), **repo.entry(n)} if blobs else {})}
                    for n in repo.files]
        self._json({"_id": repo.sha[:24], "id": repo.repo_id, "modelId": repo.repo_id, "sha": commit,
                    "private": repo.private, "gated": "manual" if repo.gated else False, "disabled": False,
                    "tags": [], "siblings": siblings}, repo)

    def _file(self, repo_id: str, revision: str, name: str, authed: bool, body: bool) -> None:
        repo = self._repo(repo_id, authed)
        if repo is None or not self._revision(repo, revision):
            return
        if repo.gated and not authed:
            return self._error(401, "GatedRepo", f"Access to model {repo_id} is restricted. You must have access "
                                                 "to it and be authenticated to access it. Please log in.", repo)
        if name not in repo.files:
            return self._error(404, "EntryNotFound", f"{name} does not exist", repo)
        source = repo.files[name]
        size = source.stat().st_size
        start = 0
        requested = self.headers.get("Range")
        if requested and requested.startswith("bytes="):
            start = int(requested.removeprefix("bytes=").split("-")[0] or 0)
        self.send_response(206 if start else 200)
        self.send_header("X-Repo-Commit", repo.commit(revision))
        self.send_header("ETag", f'"{repo.etag(name)}"')
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(size - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.end_headers()
        if body:
            self._send_body(source, name, start, size)

    def _send_body(self, source: Path, name: str, start: int, size: int) -> None:
        hub = self.server_hub
        drop_at = hub.drop_once.pop(name, None)
        with source.open("rb") as handle:
            if drop_at is None and not hub.chunk_delay_s and hub.on_sent is None and not hub.rate_bytes_s:
                self.connection.sendfile(handle, offset=start, count=size - start)
                return
            handle.seek(start)
            sent = start
            while sent < size:
                chunk = handle.read(CHUNK if drop_at is None else min(CHUNK, max(1, drop_at - sent)))
                self.wfile.write(chunk)
                sent += len(chunk)
                if hub.on_sent is not None:
                    hub.on_sent(len(chunk))
                if hub.rate_bytes_s:
                    hub.pace(len(chunk))
                if drop_at is not None and sent >= drop_at:
                    self.close_connection = True  # the peer sees a body shorter than Content-Length
                    return
                if hub.chunk_delay_s and hub._closing.wait(hub.chunk_delay_s):
                    self.close_connection = True  # shutting down: the client fails now, not at its timeout
                    return

    def _json(self, data: Any, repo: Repo) -> None:
        payload = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("X-Repo-Commit", repo.sha)
        self.end_headers()
        self.wfile.write(payload)

    def _error(self, status: int, code: str | None, message: str, repo: Repo | None = None) -> None:
        payload = json.dumps({"error": message}).encode()
        self.send_response(status)
        if code:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        if repo is not None:
            self.send_header("X-Repo-Commit", repo.sha)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def model_folder(source: Path, target: Path, *, drop: tuple[str, ...] = (), extra: dict[str, bytes] | None = None,
                 config: dict[str, Any] | None = None) -> Path:
    """A repo folder: the model's files (linked, not copied) plus `extra`, with config.json updated by `config`."""
    target.mkdir(parents=True)
    for file in source.iterdir():
        if file.name not in drop and file.name != "studio-materialized.json":
            (target / file.name).symlink_to(file)
    for name, data in (extra or {}).items():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        (target / name).write_bytes(data)
    if config:
        merged = json.loads((source / "config.json").read_text()) | config
        (target / "config.json").unlink()
        (target / "config.json").write_text(json.dumps(merged))
    return target


def wait_until(condition: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def downloads_finished() -> bool:
    """No download worker left running: after a cancel they stop at their next 10 MB."""
    return not any(thread.name == "hub-download" for thread in threading.enumerate())


class MemoryKeyring:
    """An in-memory keyring backend, so tests never read or write the real password store."""

    priority = 1

    def __init__(self) -> None:
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.passwords.pop((service, username), None)


def use_fake_hub(monkeypatch: pytest.MonkeyPatch, hub: FakeHub, tmp_path: Path) -> MemoryKeyring:
    """Point huggingface_hub (read at import: constants) and subprocesses (env) at `hub`, with an empty cache
    under tmp_path, offline mode off, and no token from the machine: returns the in-memory keyring used."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(constants, "ENDPOINT", hub.url)
    monkeypatch.setattr(constants, "HUGGINGFACE_CO_URL_TEMPLATE", hub.url + "/{repo_id}/resolve/{revision}/{filename}")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-hf-login" / "token"))
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.delenv(proxy, raising=False)
    backend = MemoryKeyring()
    monkeypatch.setattr("keyring.core._keyring_backend", backend)
    return backend


def main() -> None:
    """Serve folders as Hub repos until stopped: python -m tests.hub_server owner/name=FOLDER ...

    Prints the endpoint URL on the first line (for HF_ENDPOINT), then waits (bench/model_download.py)."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0] if main.__doc__ else None)
    parser.add_argument("repos", nargs="+", help="owner/name=FOLDER")
    parser.add_argument("--rate", type=float, default=0.0, help="The link's bandwidth in MiB/s (default: loopback).")
    args = parser.parse_args()
    with FakeHub(rate_bytes_s=args.rate * 1024**2) as hub:
        for spec in args.repos:
            repo_id, _, folder = spec.partition("=")
            hub.add_repo(repo_id, Path(folder), skip=("studio-materialized.json",))
        print(hub.url, flush=True)
        threading.Event().wait()  # until the process is stopped


if __name__ == "__main__":
    main()
