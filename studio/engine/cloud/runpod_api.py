"""RunPod through its official SDK (`runpod`): GPU types and their on-demand and spot prices, and pods
rented with the run agent as their start command.

The SDK sends GraphQL to `$RUNPOD_API_BASE_URL/graphql` (default https://api.runpod.io), read on every
call, which is also how the tests point it at a local fake server.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from studio.engine.cloud.providers import (
    AGENT_PORT,
    GpuType,
    Machine,
    MachineRequest,
    Price,
    agent_command,
    import_sdk,
    key_refused,
    provider_error,
    unreachable,
)
from studio.engine.errors import StudioError

T = TypeVar("T")
GB = 1024**3
# A pod's container disk holds the data, the base model and the checkpoints; Studio asks for 50 GB and
# sends at most a fifth of it as data (docs/cloud.md).
CONTAINER_DISK_GB = 50
MAX_UPLOAD_BYTES = 10 * GB


class RunPodProvider:
    id = "runpod"
    name = "RunPod"
    max_upload_bytes = MAX_UPLOAD_BYTES

    def gpu_types(self, api_key: str) -> list[GpuType]:
        runpod = import_sdk("runpod")
        rows: list[dict[str, Any]] = _call(lambda: runpod.get_gpus(api_key=api_key))
        return [GpuType(id=row["id"], name=row["id"], vram_gb=float(row["memoryInGb"]))
                for row in rows if row.get("memoryInGb")]

    def prices(self, api_key: str, gpu: GpuType) -> list[Price]:
        """Secure and community cloud, on-demand and spot, where RunPod offers them now."""
        runpod = import_sdk("runpod")
        row: dict[str, Any] = _call(lambda: runpod.get_gpu(gpu.id, api_key=api_key))
        found: list[Price] = []
        for cloud in ("secure", "community"):
            if not row.get(f"{cloud}Cloud"):
                continue
            for spot, field in ((False, f"{cloud}Price"), (True, f"{cloud}SpotPrice")):
                price = row.get(field)
                if price:
                    found.append(Price(per_hour=float(price), spot=spot, cloud=cloud))
        return found

# ---- pods ---------------------------------------------------------------------------------------------

AGENT_HOME = "/workspace/studio"
IMAGE = "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04"
# The agent's address: RunPod's HTTPS proxy for the pod's http port. The one place it is built, so a test's
# fake provider can put its own proxy there ({pod_id} and {port} are filled in).
PROXY_ENV = "STUDIO_RUNPOD_PROXY_URL"
PROXY_URL = "https://{pod_id}-{port}.proxy.runpod.net"
SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.:/@=+, -]*$")  # the SDK puts values in GraphQL strings unescaped


def start_command() -> str:
    """The pod's start command: install Studio's engine, then run the agent (its token is in the pod's env)."""
    return f"bash -c '{agent_command(AGENT_HOME)}'"


class RunPodPods:
    """Rent, watch and terminate pods, through the SDK's public functions only. `create_pod` checks the GPU
    with `get_gpu` and `terminate_pod` takes no key: both use the module's `runpod.api_key`, which is set to
    the user's key for the call (under a lock: one process, one key at a time)."""

    def agent_url(self, machine: Machine) -> str | None:
        """Where the run agent on the pod answers: https://POD_ID-PORT.proxy.runpod.net, or $STUDIO_RUNPOD_PROXY_URL.
        Known from the pod's id alone, as soon as it is created."""
        return os.environ.get(PROXY_ENV, PROXY_URL).format(pod_id=machine.id, port=AGENT_PORT)

    def create(self, api_key: str, request: MachineRequest) -> str:
        """Rent a pod running the agent; returns its id. On-demand through `create_pod`, spot through RunPod's
        `podRentInterruptable` mutation (the SDK has no call for it)."""
        for value in (request.name, request.gpu_id, *request.env.keys(), *request.env.values()):
            if not SAFE_VALUE.match(value):
                raise ValueError(f"unsafe value for a pod: {value!r}")
        runpod = import_sdk("runpod")
        ports = f"{AGENT_PORT}/http"
        if not request.spot:
            with _global_key(runpod, api_key):
                row = _call(lambda: runpod.create_pod(
                    request.name, IMAGE, request.gpu_id, cloud_type=request.cloud.upper(), support_public_ip=True,
                    start_ssh=False, container_disk_in_gb=CONTAINER_DISK_GB, docker_args=start_command(),
                    ports=ports, env=request.env, volume_mount_path="/workspace"))
            return str(row["id"])
        env = ", ".join(f'{{ key: "{key}", value: "{value}" }}' for key, value in request.env.items())
        mutation = f"""
        mutation {{
          podRentInterruptable(input: {{
            bidPerGpu: {request.bid_per_gpu:.4f}, cloudType: {request.cloud.upper()}, gpuCount: 1,
            volumeInGb: 0, containerDiskInGb: {CONTAINER_DISK_GB}, minVcpuCount: 1, minMemoryInGb: 1,
            gpuTypeId: "{request.gpu_id}", name: "{request.name}", imageName: "{IMAGE}",
            dockerArgs: "{start_command()}", ports: "{ports}", volumeMountPath: "/workspace", env: [{env}]
          }}) {{ id imageName env machineId machine {{ podHostId }} }}
        }}
        """
        from runpod.api.graphql import run_graphql_query

        answer = _call(lambda: run_graphql_query(mutation, api_key=api_key))
        row = (answer.get("data") or {}).get("podRentInterruptable")
        if not isinstance(row, dict) or not row.get("id"):
            raise provider_error("runpod", "No spot machine of this type is free at this bid right now.")
        return str(row["id"])

    def get(self, api_key: str, machine_id: str) -> Machine:
        """The pod's state: starting (no runtime yet), running, exited (stopped or taken back) or gone."""
        runpod = import_sdk("runpod")
        row = _call(lambda: runpod.get_pod(machine_id, api_key=api_key))
        return _machine(machine_id, row)

    def find(self, api_key: str, name: str) -> list[Machine]:
        """The account's pods named `name` that are not gone, through the SDK's `get_pods`."""
        runpod = import_sdk("runpod")
        rows = _call(lambda: runpod.get_pods(api_key=api_key)) or []
        found = [_machine(str(row.get("id")), row) for row in rows
                 if isinstance(row, dict) and row.get("name") == name and row.get("id")]
        return [machine for machine in found if machine.state != "gone"]

    def terminate(self, api_key: str, machine_id: str) -> None:
        """Terminate the pod (it stops billing); one already gone is fine."""
        runpod = import_sdk("runpod")
        with _global_key(runpod, api_key):
            try:
                _call(lambda: runpod.terminate_pod(machine_id))
            except StudioError as error:
                if error.code != "cloud_provider_error" or "not found" not in error.why.lower():
                    raise


def _machine(machine_id: str, row: Any) -> Machine:
    if not isinstance(row, dict) or not row:
        return Machine(machine_id, "gone")
    status = str(row.get("desiredStatus") or "").upper()
    price = row.get("costPerHr")
    cost = float(price) if isinstance(price, (int, float)) else None
    name = str(row.get("name") or "")
    if status in {"EXITED", "STOPPED"}:
        return Machine(machine_id, "exited", cost, name=name)
    if status in {"TERMINATED", ""}:
        return Machine(machine_id, "gone", cost, name=name)
    return Machine(machine_id, "running" if row.get("runtime") else "starting", cost, name=name)


_KEY_LOCK = threading.Lock()


@contextlib.contextmanager
def _global_key(runpod: Any, api_key: str) -> Iterator[None]:
    with _KEY_LOCK:
        before = runpod.api_key
        runpod.api_key = api_key
        try:
            yield
        finally:
            runpod.api_key = before


def _call(request: Callable[[], T]) -> T:
    """One SDK call, its failures said in Studio's words."""
    import requests
    from runpod import error

    try:
        return request()
    except error.AuthenticationError:
        raise key_refused("runpod") from None
    except error.QueryError as exc:
        raise provider_error("runpod", str(exc)) from None
    except requests.JSONDecodeError as exc:  # an answer that is not JSON: a proxy page or an outage notice
        raise provider_error("runpod", f"The answer could not be read ({_first_line(exc)}).") from None
    except requests.RequestException as exc:
        raise unreachable("runpod", f"RunPod's API could not be reached ({_first_line(exc)}).") from None
    except ValueError as exc:  # get_gpu: a GPU type listed a moment ago is gone
        raise provider_error("runpod", _first_line(exc)) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
