"""What every fake GPU provider in these tests shares: its machines are the real run agent as a local process
on 127.0.0.1, reached through a forwarder in the fake (RunPod's proxy, a Lambda instance's IP), and a
keyring in a file that the runner's subprocess reads too.

`FileKeyring` is a keyring backend in the file $STUDIO_TEST_KEYRING_FILE (PYTHON_KEYRING_BACKEND);
`use_file_keyring` sets it up for a test. `start_agent` starts the agent as a machine's start command would
(`--port 0 --launch-args "--num_processes 1 --cpu"`) and returns it with its port; `kill_tree` kills it and
its worker; `forward` passes one request on to an agent's port, as a provider's network does.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import keyring.backend
import psutil
import pytest

from studio.engine.cloud.agent import TOKEN_ENV

ROOT = Path(__file__).resolve().parents[3]
KEYRING_FILE_ENV = "STUDIO_TEST_KEYRING_FILE"
LAUNCH_ARGS = "--num_processes 1 --cpu"


class FileKeyring(keyring.backend.KeyringBackend):
    """Passwords in a JSON file named by $STUDIO_TEST_KEYRING_FILE: shared by the test and its subprocesses."""

    priority = 1  # type: ignore[assignment]

    def _path(self) -> Path:
        return Path(os.environ[KEYRING_FILE_ENV])

    def _all(self) -> dict[str, str]:
        try:
            return dict(json.loads(self._path().read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._all().get(f"{service}\n{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._all()
        data[f"{service}\n{username}"] = password
        partial = self._path().with_suffix(f".{os.getpid()}.part")
        partial.write_text(json.dumps(data))
        partial.replace(self._path())

    def delete_password(self, service: str, username: str) -> None:
        data = self._all()
        data.pop(f"{service}\n{username}", None)
        self._path().write_text(json.dumps(data))


def use_file_keyring(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A file keyring (no key saved) for the test and the subprocesses it starts, which also find Studio."""
    monkeypatch.setenv(KEYRING_FILE_ENV, str(tmp_path / "keyring.json"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", f"{__name__}.FileKeyring")
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    monkeypatch.setattr("keyring.core._keyring_backend", FileKeyring())


def start_agent(home: Path, token: str) -> subprocess.Popen[str]:
    """The agent in `home` with `token`, as a machine's start command runs it (its log beside `home`)."""
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, TOKEN_ENV: token, "OMP_NUM_THREADS": "2"}
    with home.with_name(home.name + ".log").open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "studio.engine.cloud.agent", "--host", "127.0.0.1", "--port", "0",
             "--home", str(home), "--launch-args", LAUNCH_ARGS],
            stdout=subprocess.PIPE, stderr=stderr, text=True, env=env, start_new_session=True, cwd=ROOT,
        )
    return process


def read_port(process: subprocess.Popen[str]) -> int | None:
    """The port the agent printed in its first line, or None when it did not come up."""
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline() or "{}")
    return int(ready["port"]) if ready.get("agent") == "ready" else None


def kill_tree(process: subprocess.Popen[str] | None) -> None:
    """The agent and everything it started (the worker runs in a session of its own)."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process(process.pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                child.kill()
    process.kill()
    process.wait()


def read_body(handler: BaseHTTPRequestHandler) -> bytes | None:
    length = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(length) if length else None


def forward(handler: BaseHTTPRequestHandler, method: str, port: int, path: str, body: bytes | None) -> None:
    """Pass the request `handler` is answering (its body already read) on to the agent on 127.0.0.1:`port`,
    and its answer back."""
    headers = {k: v for k, v in handler.headers.items() if k.lower() not in {"host", "connection"}}
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
    except OSError:
        plain(handler, 502, b"502 Bad Gateway")
        return
    handler.send_response(response.status)
    for name, value in response.getheaders():
        if name.lower() not in {"connection", "transfer-encoding", "server", "date"}:
            handler.send_header(name, value)
    handler.end_headers()
    with contextlib.suppress(OSError, http.client.HTTPException):
        while block := response.read(65536):
            handler.wfile.write(block)
    connection.close()


def plain(handler: BaseHTTPRequestHandler, status: int, text: bytes) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", "text/plain")
    handler.send_header("Content-Length", str(len(text)))
    handler.end_headers()
    handler.wfile.write(text)
