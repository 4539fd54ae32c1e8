"""A fake RunPod that rents out "pods" which are the real run agent as a local process on 127.0.0.1.

It answers the GraphQL the `runpod` SDK sends (the GPU queries of tests/cloud_server.py, plus the pod calls, in
the shapes of the SDK's own query strings in runpod/api/ and RunPod's GraphQL docs):

    mutation { podFindAndDeployOnDemand(input: {...}) { id imageName env machineId machine { podHostId } } }
    mutation { podRentInterruptable(input: {bidPerGpu: ..., ...}) { id ... } }        (spot)
    query pod { pod(input: {podId: "..."}) { id desiredStatus costPerHr runtime { ports { ... } } ... } }
    mutation { podTerminate(input: { podId: "..." }) }

Creating a pod starts `python -m studio.engine.cloud.agent --port 0 --home TMP --launch-args "--num_processes 1
--cpu"` with the token from the pod's env, as the pod's start command would. The fake is also RunPod's HTTP
proxy: $STUDIO_RUNPOD_PROXY_URL points at /proxy/POD_ID-PORT/ here, which forwards to the pod's agent, and
answers 404 (without the agent's header, as the real proxy does) for a pod that has exited or is gone.
`preempt(pod_id)` takes a pod back (the agent and its worker are killed, the pod is EXITED); `terminated`
records every terminate call, and `billing()` lists the pods still running, so a test can check that nothing
is left billing.

The agent process, the forwarding and the file keyring the runner's subprocess shares are
tests/engine/cloud/fake_machines.py, which the fake Lambda uses too. `myself { pods }` (the SDK's `get_pods`)
lists the pods with their names, so a pod whose id a killed runner never saved is found again.
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
from studio.engine.cloud.runpod_api import PROXY_ENV
from tests.cloud_server import CATALOG, GOOD_KEY, FakeGpu, FakeRunPod, graphql_handler
from tests.engine.cloud.fake_machines import (
    FileKeyring,
    forward,
    kill_tree,
    plain,
    read_body,
    read_port,
    start_agent,
    use_file_keyring,
)
from tests.local_http import JsonHandler, serving, url_of


@dataclass
class FakePod:
    id: str
    gpu_id: str
    spot: bool
    cloud: str
    env: dict[str, str]
    price: float
    docker_args: str
    ports: str
    home: Path
    name: str = ""
    status: str = "RUNNING"  # RUNNING, EXITED, TERMINATED
    process: subprocess.Popen[str] | None = None
    port: int | None = None  # the agent's, once it is ready
    log: Path | None = None

    def detail(self) -> dict[str, Any]:
        runtime = None
        if self.status == "RUNNING" and self.port is not None:
            runtime = {"ports": [{"ip": "100.65.0.2", "isIpPublic": False, "privatePort": 8765, "publicPort": 8765,
                                  "type": "http"}]}
        return {
            "id": self.id, "containerDiskInGb": 50, "costPerHr": self.price, "desiredStatus": self.status,
            "dockerArgs": self.docker_args, "dockerId": None, "env": [f"{k}={v}" for k, v in self.env.items()],
            "gpuCount": 1, "imageName": "runpod/pytorch", "lastStatusChange": "", "machineId": "m-" + self.id,
            "memoryInGb": 62, "name": self.name, "podType": "INTERRUPTABLE" if self.spot else "RESERVED",
            "port": None, "ports": self.ports, "uptimeSeconds": 0, "vcpuCount": 8, "volumeInGb": 0,
            "volumeMountPath": "/workspace", "runtime": runtime, "machine": {"gpuDisplayName": self.gpu_id},
        }


@dataclass
class FakeRunPodPods(FakeRunPod):
    homes: Path = Path()
    pods: dict[str, FakePod] = field(default_factory=dict)
    terminated: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    agent_delay_s: float = 0.0  # how long a new pod takes before its agent starts
    no_agent: bool = False  # pods whose start command never brings the agent up
    create_delay_s: float = 0.0  # how long the answer to a create takes once the pod exists (a slow network)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, query: str) -> dict[str, Any]:
        for mutation in ("podFindAndDeployOnDemand", "podRentInterruptable"):
            if mutation in query:
                return {"data": {mutation: self._create(query, spot=mutation == "podRentInterruptable")}}
        found = re.search(r'podTerminate\(input: \{ podId: "([^"]+)" \}\)', query)
        if found:
            self.terminate(found.group(1))
            return {"data": {"podTerminate": None}}
        found = re.search(r'pod\(input: \{podId: "([^"]+)"\}\)', query)
        if found:
            pod = self.pods.get(found.group(1))
            return {"data": {"pod": pod.detail() if pod and pod.status != "TERMINATED" else None}}
        if "myself" in query and "pods" in query:  # get_pods: the account's pods, terminated ones gone
            return {"data": {"myself": {"pods": [pod.detail() for pod in self.pods.values()
                                                 if pod.status != "TERMINATED"]}}}
        return super().answer(query)

    def _create(self, query: str, spot: bool) -> dict[str, Any]:
        def field_value(name: str) -> str:
            match = re.search(rf'{name}: "([^"]*)"', query) or re.search(rf"{name}: ([A-Za-z0-9_.]+)", query)
            return match.group(1) if match else ""

        gpu_id = field_value("gpuTypeId")
        gpu = next(item for item in self.gpus if item.id == gpu_id)
        cloud = field_value("cloudType").lower()
        env = dict(re.findall(r'\{ key: "([^"]*)", value: "([^"]*)" \}', query))
        price = float(field_value("bidPerGpu")) if spot else float(
            (gpu.secure if cloud == "secure" else gpu.community) or 0)
        pod_id = f"fakepod{next(self._ids)}"
        pod = FakePod(pod_id, gpu_id, spot, cloud, env, price, field_value("dockerArgs"), field_value("ports"),
                      self.homes / pod_id, name=field_value("name"))
        with self._lock:
            self.pods[pod_id] = pod
            self.created.append(pod_id)
        if not self.no_agent:
            threading.Thread(target=self._start_agent, args=(pod,), daemon=True).start()
        time.sleep(self.create_delay_s)
        return {"id": pod_id, "imageName": "runpod/pytorch", "env": [f"{k}={v}" for k, v in env.items()],
                "machineId": "m-" + pod_id, "machine": {"podHostId": pod_id + "-host"}}

    def _start_agent(self, pod: FakePod) -> None:
        time.sleep(self.agent_delay_s)
        pod.log = pod.home.with_name(pod.id + ".log")
        process = start_agent(pod.home, pod.env.get(TOKEN_ENV, ""))
        with self._lock:
            pod.process = process
            if pod.status != "RUNNING":  # terminated while it started
                kill_tree(process)
                return
        pod.port = read_port(process)

    def preempt(self, pod_id: str) -> None:
        """The provider takes a spot pod back: its machine goes at once (no time to checkpoint)."""
        with self._lock:
            pod = self.pods[pod_id]
            pod.status = "EXITED"
            kill_tree(pod.process)

    def terminate(self, pod_id: str) -> None:
        with self._lock:
            self.terminated.append(pod_id)
            pod = self.pods.get(pod_id)
            if pod is not None:
                pod.status = "TERMINATED"
                kill_tree(pod.process)

    def billing(self) -> list[str]:
        """Pods still listed (running or exited): what a real account would still pay for."""
        return [pod.id for pod in self.pods.values() if pod.status != "TERMINATED"]

    def running_pods(self) -> list[FakePod]:
        return [pod for pod in self.pods.values() if pod.status == "RUNNING"]


def _handler(api: FakeRunPodPods) -> type[JsonHandler]:
    graphql = graphql_handler(api)  # RunPod's API, as the offers fake answers it, plus the pods' proxy

    class Handler(graphql):
        def do_POST(self) -> None:  # noqa: N802 - the names http.server calls
            if self.path.startswith("/proxy/"):
                self._proxy("POST")
            else:
                super().do_POST()

        def do_GET(self) -> None:  # noqa: N802
            self._proxy("GET")

        def do_PUT(self) -> None:  # noqa: N802
            self._proxy("PUT")

        def _proxy(self, method: str) -> None:
            """RunPod's proxy: https://POD_ID-PORT.proxy.runpod.net/PATH, here /proxy/POD_ID-PORT/PATH."""
            match = re.match(r"^/proxy/([^/]+)-(\d+)(/.*)$", self.path)
            pod = api.pods.get(match.group(1)) if match else None
            body = read_body(self)
            if match is None or pod is None or pod.status != "RUNNING":
                plain(self, 404, b"404 page not found")
            elif pod.port is None:
                plain(self, 502, b"502 Bad Gateway")  # the pod runs, but nothing listens on the port yet
            else:
                forward(self, method, pod.port, match.group(3), body)

    return Handler


@contextmanager
def fake_runpod_pods(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeRunPodPods]:
    """The fake serving on a free port, the SDK and the agent's URL pointed at it, and a file keyring (no key
    saved) that subprocesses share. Every pod's agent is killed at the end."""
    api = FakeRunPodPods(gpus=list(CATALOG), homes=tmp_path / "pods")
    with serving(_handler(api), daemon_threads=True) as server:  # closing must not wait for a long poll
        api.url = url_of(server)
        monkeypatch.setenv("RUNPOD_API_BASE_URL", api.url)
        monkeypatch.setenv(PROXY_ENV, api.url + "/proxy/{pod_id}-{port}")
        use_file_keyring(monkeypatch, tmp_path)
        try:
            yield api
        finally:
            for pod in list(api.pods.values()):
                kill_tree(pod.process)

__all__ = ["GOOD_KEY", "FakeGpu", "FakeRunPodPods", "FileKeyring", "fake_runpod_pods"]
