"""A fake Lambda Cloud API on 127.0.0.1 whose instances are the real run agent as a local process.

It answers Studio's client (studio/engine/cloud/lambda_api.py) in the shapes of Lambda's documented Cloud API
(https://cloud.lambdalabs.com/api/v1): `{"data": ...}` for an answer, `{"error": {"code", "message"}}` with
401 for a key it does not know and 404 for an instance it does not have.

    GET  /api/v1/instance-types                {"data": {NAME: {"instance_type", "regions_with_capacity_available"}}}
    GET  /api/v1/ssh-keys                      {"data": [{"id", "name", "public_key"}]}
    GET  /api/v1/firewall-rules, PUT           {"data": [{"protocol", "port_range", "source_network", "description"}]}
    POST /api/v1/instance-operations/launch    {"data": {"instance_ids": [...]}}
    GET  /api/v1/instances, /instances/{id}    status booting, then active with an ip once its agent is up
    POST /api/v1/instance-operations/terminate {"data": {"terminated_instances": [...]}}

Launching runs the agent with the token its cloud-init user data exports, as the instance's first boot would.
The instance has no IP while it boots (the agent starts after `boot_s`); then it gets a fake one, 10.0.0.N.
$STUDIO_LAMBDA_AGENT_URL points at /ip/{ip}-{port}/ here, which forwards to that instance's agent (the
instance's public address; nothing answers there once it is terminated). `launched`, `terminated` and
`billing()` let a test check that nothing is left billing.
"""

from __future__ import annotations

import itertools
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from studio.engine.cloud.agent import TOKEN_ENV
from studio.engine.cloud.lambda_api import AGENT_URL_ENV, BASE_URL_ENV
from tests.engine.cloud.fake_machines import (
    forward,
    kill_tree,
    plain,
    read_body,
    read_port,
    start_agent,
    use_file_keyring,
)
from tests.local_http import JsonHandler, serving, url_of

GOOD_KEY = "secret_studio-test_lambda"
API = "/api/v1"


@dataclass
class FakeType:
    name: str
    description: str
    gpus: int
    cents: int
    regions: list[str]

    def row(self) -> dict[str, Any]:
        gpu = self.description.split("x ", 1)[1]
        return {
            "instance_type": {
                "name": self.name, "description": self.description, "gpu_description": gpu,
                "price_cents_per_hour": self.cents,
                "specs": {"vcpus": 30 * self.gpus, "memory_gib": 200 * self.gpus, "storage_gib": 1400,
                          "gpus": self.gpus},
            },
            "regions_with_capacity_available": [{"name": region, "description": region} for region in self.regions],
        }


# A few of Lambda's instance types, with prices of the kind its console lists; the H100 has no capacity now.
TYPES = [
    FakeType("gpu_1x_a10", "1x A10 (24 GB PCIe)", 1, 75, ["us-east-1"]),
    FakeType("gpu_1x_a100_sxm4", "1x A100 (40 GB SXM4)", 1, 129, ["us-west-2", "us-east-1"]),
    FakeType("gpu_1x_h100_pcie", "1x H100 (80 GB PCIe)", 1, 249, []),
    FakeType("gpu_8x_a100", "8x A100 (40 GB SXM4)", 8, 1032, ["us-east-1"]),
]


@dataclass
class FakeInstance:
    id: str
    name: str
    type: FakeType
    region: str
    ssh_key_names: list[str]
    user_data: str
    home: Path
    status: str = "booting"  # booting, active, terminated
    ip: str | None = None
    process: subprocess.Popen[str] | None = None
    port: int | None = None  # the agent's, once it is ready

    @property
    def token(self) -> str:
        found = re.search(rf"^export {TOKEN_ENV}=(\S+)$", self.user_data, re.MULTILINE)
        return found.group(1).strip("'") if found else ""

    def row(self) -> dict[str, Any]:
        row: dict[str, Any] = {
            "id": self.id, "name": self.name, "status": self.status, "ssh_key_names": self.ssh_key_names,
            "file_system_names": [], "region": {"name": self.region, "description": self.region},
            "instance_type": self.type.row()["instance_type"], "hostname": self.id, "is_reserved": False,
        }
        if self.ip:
            row["ip"] = self.ip
        return row


@dataclass
class FakeLambda:
    homes: Path
    key: str = GOOD_KEY
    types: list[FakeType] = field(default_factory=lambda: list(TYPES))
    ssh_keys: list[dict[str, str]] = field(
        default_factory=lambda: [{"id": "k1", "name": "my-laptop", "public_key": "ssh-ed25519 AAAAC3 me@laptop"}])
    firewall: list[dict[str, Any]] = field(default_factory=lambda: [
        {"protocol": "tcp", "port_range": [22, 22], "source_network": "0.0.0.0/0", "description": "SSH"}])
    instances: dict[str, FakeInstance] = field(default_factory=dict)
    launched: list[str] = field(default_factory=list)
    launches: list[dict[str, Any]] = field(default_factory=list)  # the launch requests, as sent
    terminated: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # "METHOD /path" of every API call
    boot_s: float = 0.5  # how long an instance boots before its agent starts (it has no IP until then)
    launch_fails_after: bool = False  # a launch answers 500, but the instance was created all the same
    too_many: int = 0  # the next this many API calls answer 429 (Lambda's rate limit)
    url: str = ""
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, method: str, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if method == "GET" and path == "/instance-types":
            return 200, {"data": {item.name: item.row() for item in self.types}}
        if method == "GET" and path == "/ssh-keys":
            return 200, {"data": list(self.ssh_keys)}
        if path == "/firewall-rules":
            if method == "PUT":
                self.firewall = list(body.get("data") or [])
            return 200, {"data": list(self.firewall)}
        if method == "POST" and path == "/instance-operations/launch":
            return self._launch(body)
        if method == "GET" and path == "/instances":
            return 200, {"data": [item.row() for item in self.instances.values() if item.status != "terminated"]}
        found = re.match(r"^/instances/([^/]+)$", path)
        if method == "GET" and found:
            instance = self.instances.get(found.group(1))
            if instance is None:
                return _error(404, "global/object-does-not-exist", "Specified instance does not exist.")
            return 200, {"data": instance.row()}
        if method == "POST" and path == "/instance-operations/terminate":
            ids = list(body.get("instance_ids") or [])
            if any(instance_id not in self.instances for instance_id in ids):
                return _error(404, "global/object-does-not-exist", "Specified instance does not exist.")
            return 200, {"data": {"terminated_instances": [self.terminate(instance_id) for instance_id in ids]}}
        return _error(404, "global/not-found", f"No such endpoint: {method} {path}")

    def _launch(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        kind = next((item for item in self.types if item.name == body.get("instance_type_name")), None)
        if kind is None:
            return _error(400, "global/invalid-parameters", "Unknown instance type.")
        if body.get("region_name") not in kind.regions:
            return _error(400, "instance-operations/launch/insufficient-capacity",
                          "Not enough capacity to fulfill launch request.")
        keys = body.get("ssh_key_names") or []
        if len(keys) != 1 or keys[0] not in {key["name"] for key in self.ssh_keys}:
            return _error(400, "global/invalid-parameters", "Exactly one existing SSH key must be specified.")
        self.launches.append(body)
        instance_id = f"fakeinst{next(self._ids)}"
        instance = FakeInstance(instance_id, str(body.get("name") or ""), kind, str(body["region_name"]), list(keys),
                                str(body.get("user_data") or ""), self.homes / instance_id)
        with self._lock:
            self.instances[instance_id] = instance
            self.launched.append(instance_id)
        threading.Thread(target=self._boot, args=(instance,), daemon=True).start()
        if self.launch_fails_after:
            return _error(500, "global/unknown", "Something went wrong while launching.")
        return 200, {"data": {"instance_ids": [instance_id]}}

    def _boot(self, instance: FakeInstance) -> None:
        """The first boot runs the user data: the agent starts, and the instance gets its address."""
        time.sleep(self.boot_s)
        process = start_agent(instance.home, instance.token)
        with self._lock:
            instance.process = process
            if instance.status != "booting":  # terminated while it booted
                kill_tree(process)
                return
        port = read_port(process)
        with self._lock:
            instance.port = port
            if instance.status == "booting":
                instance.status, instance.ip = "active", f"10.0.0.{instance.id.removeprefix('fakeinst')}"

    def terminate(self, instance_id: str) -> dict[str, Any]:
        with self._lock:
            self.terminated.append(instance_id)
            instance = self.instances[instance_id]
            instance.status = "terminated"
            kill_tree(instance.process)
            return instance.row()

    def billing(self) -> list[str]:
        """Instances not terminated: what a real account would still pay for."""
        return [item.id for item in self.instances.values() if item.status != "terminated"]

    def by_ip(self, ip: str) -> FakeInstance | None:
        return next((item for item in self.instances.values() if item.ip == ip), None)


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"code": code, "message": message}}


def _handler(api: FakeLambda) -> type[JsonHandler]:
    class Handler(JsonHandler):
        def do_GET(self) -> None:  # noqa: N802 - the names http.server calls
            self._route("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._route("POST")

        def do_PUT(self) -> None:  # noqa: N802
            self._route("PUT")

        def _route(self, method: str) -> None:
            if self.path.startswith("/ip/"):
                self._to_instance(method)
                return
            body = self.read_json() if method != "GET" else {}
            path = self.path.removeprefix(API)
            api.requests.append(f"{method} {path}")
            if not self.path.startswith(API + "/"):
                self.send_json(404, {"error": {"code": "global/not-found", "message": "Not found"}})
            elif api.too_many > 0:
                api.too_many -= 1
                self.send_json(429, {"error": {"code": "global/too-many-requests", "message": "Too many requests."}})
            elif self.headers.get("Authorization") != f"Bearer {api.key}":
                self.send_json(401, {"error": {"code": "global/invalid-api-key",
                                               "message": "API key was invalid, expired, or deleted."}})
            else:
                self.send_json(*api.answer(method, path, body))

        def _to_instance(self, method: str) -> None:
            """The instance's public address: http://IP:PORT/PATH, here /ip/IP-PORT/PATH."""
            match = re.match(r"^/ip/([0-9.]+)-(\d+)(/.*)$", self.path)
            instance = api.by_ip(match.group(1)) if match else None
            body = read_body(self)
            if match is None or instance is None or instance.status != "active" or instance.port is None:
                plain(self, 502, b"nothing answers at this address")
            else:
                forward(self, method, instance.port, match.group(3), body)

    return Handler


@contextmanager
def fake_lambda(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeLambda]:
    """The fake serving on a free port, Studio's client and the agent's address pointed at it, and a file
    keyring (no key saved) that subprocesses share. Every instance's agent is killed at the end."""
    api = FakeLambda(homes=tmp_path / "instances")
    with serving(_handler(api), daemon_threads=True) as server:  # closing must not wait for a long poll
        api.url = url_of(server)
        monkeypatch.setenv(BASE_URL_ENV, api.url + API)
        monkeypatch.setenv(AGENT_URL_ENV, api.url + "/ip/{ip}-{port}")
        use_file_keyring(monkeypatch, tmp_path)
        try:
            yield api
        finally:
            for instance in list(api.instances.values()):
                kill_tree(instance.process)
