"""Lambda (on-demand instances) through a small client on httpx over Lambda's documented Cloud API: Lambda
publishes no official Python SDK (docs/cloud.md).

    GET  /instance-types                  types, price_cents_per_hour, specs, regions_with_capacity_available
    GET  /ssh-keys                        the account's keys: a launch needs exactly one
    GET  /firewall-rules, PUT             the account's inbound rules: the agent's port is opened once
    POST /instance-operations/launch      region_name, instance_type_name, ssh_key_names, name, user_data
    GET  /instances, /instances/{id}      status (booting, active, unhealthy, terminating, terminated) and ip
    POST /instance-operations/terminate   instance_ids

The key goes as `Authorization: Bearer KEY`. The base URL is https://cloud.lambdalabs.com/api/v1, or
$LAMBDA_API_BASE_URL (how the tests reach a fake Lambda on 127.0.0.1). The agent is reached on the
instance's public IP, on plain HTTP with its token (no provider proxy, unlike RunPod): see docs/cloud.md.
"""

from __future__ import annotations

import os
import re
import shlex
import threading
import time
from typing import Any

from studio.engine.cloud.providers import (
    AGENT_PORT,
    GpuType,
    Machine,
    MachineRequest,
    MachineState,
    Price,
    agent_command,
    import_sdk,
    key_refused,
    provider_error,
    unreachable,
)
from studio.engine.errors import StudioError

BASE_URL_ENV = "LAMBDA_API_BASE_URL"
BASE_URL = "https://cloud.lambdalabs.com/api/v1"
# The agent's address once the instance has an IP; the tests' fake puts its own forwarder here ({ip}, {port}).
AGENT_URL_ENV = "STUDIO_LAMBDA_AGENT_URL"
AGENT_URL = "http://{ip}:{port}"
AGENT_HOME = "/home/ubuntu/studio"
TIMEOUT_S = 30.0
# Lambda documents about one request per second (one launch per 10 s): requests from this process are
# spaced by this much, and a 429 is waited out a few times before it is said.
MIN_INTERVAL_S = 1.0
RATE_LIMITED_TRIES = 4
GB = 1024**3
# An instance's own disk is large (hundreds of GB on 1-GPU types); Studio keeps the same cap as on RunPod.
MAX_UPLOAD_BYTES = 10 * GB
FIREWALL_NOTE = "Studio's run agent (rented GPUs)"
_MEMORY = re.compile(r"\((\d+(?:\.\d+)?)\s*GB", re.IGNORECASE)


class LambdaProvider:
    id = "lambda"
    name = "Lambda"
    max_upload_bytes = MAX_UPLOAD_BYTES

    def __init__(self) -> None:
        self._listing: dict[str, Any] | None = None  # one listing serves gpu_types and the prices after it

    def gpu_types(self, api_key: str) -> list[GpuType]:
        """The instance types with one GPU (the planner plans one GPU; a 2x or 8x type would bill for GPUs the
        run leaves idle), named as NVIDIA names them so the planner's speed table knows them."""
        found = []
        self._listing = _instance_types(api_key)
        for type_id, row in self._listing.items():
            info = row.get("instance_type") or {}
            specs = info.get("specs") or {}
            if specs.get("gpus") != 1:
                continue
            described = str(info.get("gpu_description") or info.get("description") or type_id)
            memory = _MEMORY.search(described)
            if memory is None:
                continue
            found.append(GpuType(id=type_id, name=_nvidia_name(described), vram_gb=float(memory.group(1))))
        return found

    def prices(self, api_key: str, gpu: GpuType) -> list[Price]:
        """On-demand only (Lambda rents no spot instances), in its one kind of cloud; none when no region has
        an instance of this type free right now."""
        listing = self._listing if self._listing is not None else _instance_types(api_key)
        row = listing.get(gpu.id) or {}
        cents = (row.get("instance_type") or {}).get("price_cents_per_hour")
        if not row.get("regions_with_capacity_available") or not isinstance(cents, (int, float)) or cents <= 0:
            return []
        return [Price(per_hour=float(cents) / 100.0, spot=False, cloud="secure")]


def _nvidia_name(described: str) -> str:
    """'A10 (24 GB PCIe)' -> 'NVIDIA A10 PCIe': the form factor kept (the speed table tells H100 PCIe apart)."""
    base = described.split("(")[0].strip()
    base = re.sub(r"^\d+x\s+", "", base)
    form = re.search(r"GB\s+([A-Za-z0-9]+)\)", described)
    name = f"{base} {form.group(1)}" if form else base
    return name if name.upper().startswith("NVIDIA") else f"NVIDIA {name}"


class LambdaMachines:
    """Launch, watch and terminate Lambda instances that run the agent from their cloud-init user data."""

    def agent_url(self, machine: Machine) -> str | None:
        """http://IP:8765 once the instance has an IP (it has none while it boots)."""
        if not machine.address:
            return None
        return os.environ.get(AGENT_URL_ENV, AGENT_URL).format(ip=machine.address, port=AGENT_PORT)

    def create(self, api_key: str, request: MachineRequest) -> str:
        """Launch one instance of the type in the first region with one free; returns its id."""
        if request.spot:
            raise provider_error("lambda", "Lambda rents on-demand instances only; there is no spot kind.")
        row = _instance_types(api_key).get(request.gpu_id) or {}
        regions = [str(region.get("name")) for region in row.get("regions_with_capacity_available") or []
                   if isinstance(region, dict) and region.get("name")]
        if not regions:
            raise StudioError(
                what=f"Lambda has no {request.gpu_id} instance free in any region right now.",
                why="Lambda's free capacity changes by the minute; nothing was rented.",
                actions=["Try again in a few minutes.", "Or choose another GPU from the offers."],
                code="cloud_none_available",
            )
        ssh_key = _first_ssh_key(api_key)
        _open_agent_port(api_key)
        answer = _request("POST", "/instance-operations/launch", api_key, json={
            "region_name": regions[0], "instance_type_name": request.gpu_id, "ssh_key_names": [ssh_key],
            "name": request.name, "quantity": 1, "user_data": user_data(request.env),
        })
        ids = (answer.get("data") or {}).get("instance_ids") or []
        if not ids:
            raise provider_error("lambda", "The launch was accepted but no instance id came back.")
        return str(ids[0])

    def get(self, api_key: str, machine_id: str) -> Machine:
        try:
            answer = _request("GET", f"/instances/{machine_id}", api_key)
        except _NotFoundError:
            return Machine(machine_id, "gone")
        return _machine(answer.get("data") or {}, machine_id)

    def find(self, api_key: str, name: str) -> list[Machine]:
        rows = _request("GET", "/instances", api_key).get("data") or []
        found = [_machine(row, str(row.get("id"))) for row in rows
                 if isinstance(row, dict) and row.get("name") == name and row.get("id")]
        return [machine for machine in found if machine.state != "gone"]

    def terminate(self, api_key: str, machine_id: str) -> None:
        """Terminate the instance (it stops billing); one already gone is fine."""
        try:
            _request("POST", "/instance-operations/terminate", api_key, json={"instance_ids": [machine_id]})
        except _NotFoundError:
            return


def user_data(env: dict[str, str]) -> str:
    """The instance's cloud-init user data: a first-boot script that starts the agent in the background with
    the same install and command as a RunPod pod (providers.agent_command), its token in its environment."""
    exports = "".join(f"export {key}={shlex.quote(value)}\n" for key, value in env.items() if key.isidentifier())
    command = agent_command(AGENT_HOME, python="python3")
    return ("#!/bin/bash\n" + exports + f"mkdir -p {AGENT_HOME}\n"
            f"nohup bash -c {shlex.quote(command)} > /var/log/studio-agent.log 2>&1 &\n")


def _machine(row: dict[str, Any], machine_id: str) -> Machine:
    status = str(row.get("status") or "")
    cents = (row.get("instance_type") or {}).get("price_cents_per_hour")
    cost = float(cents) / 100.0 if isinstance(cents, (int, float)) else None
    address = str(row["ip"]) if row.get("ip") else None
    name = str(row.get("name") or "")
    if status in {"terminating", "terminated", ""}:
        return Machine(machine_id, "gone", cost, name=name)
    if status == "preempted":
        return Machine(machine_id, "exited", cost, name=name)
    # booting: no agent yet; unhealthy: still billed, and the runner's failed requests decide whether it is lost
    state: MachineState = "running" if status in {"active", "unhealthy"} and address else "starting"
    return Machine(machine_id, state, cost, address, name)


def _first_ssh_key(api_key: str) -> str:
    """Lambda launches an instance only with one of the account's SSH keys: the first one listed. Studio never
    uses SSH (the agent answers over HTTP), so any key will do."""
    keys = _request("GET", "/ssh-keys", api_key).get("data") or []
    names = [str(key["name"]) for key in keys if isinstance(key, dict) and key.get("name")]
    if not names:
        raise StudioError(
            what="Lambda needs an SSH key in your account before it launches an instance.",
            why="Every Lambda launch names one of the account's SSH keys. Studio does not use SSH, but Lambda "
                "requires the key all the same. Nothing was rented.",
            actions=["Add an SSH key in Lambda's console (SSH keys > Add SSH key) and try again.",
                     "Any key of yours will do: Studio reaches the machine over HTTP, not SSH."],
            code="cloud_no_ssh_key",
        )
    return names[0]


def _open_agent_port(api_key: str) -> None:
    """Lambda's inbound firewall lets only SSH in by default. Its rules are the account's, replaced as a
    whole: the agent's port is added to the rules already there, once, and left for later runs."""
    rules = _request("GET", "/firewall-rules", api_key).get("data") or []
    for rule in rules:
        ports = rule.get("port_range") or [0, 0]
        if rule.get("protocol") in {"tcp", "all"} and rule.get("source_network") == "0.0.0.0/0" \
                and len(ports) == 2 and ports[0] <= AGENT_PORT <= ports[1]:
            return
    ours = {"protocol": "tcp", "port_range": [AGENT_PORT, AGENT_PORT], "source_network": "0.0.0.0/0",
            "description": FIREWALL_NOTE}
    _request("PUT", "/firewall-rules", api_key, json={"data": [*rules, ours]})


def _instance_types(api_key: str) -> dict[str, Any]:
    data = _request("GET", "/instance-types", api_key).get("data") or {}
    return {str(key): value for key, value in data.items() if isinstance(value, dict)}


class _NotFoundError(Exception):
    pass


_PACE = threading.Lock()
_last_request = 0.0


def _paced(send: Any) -> Any:
    """`send()` no sooner than MIN_INTERVAL_S after this process's previous request to Lambda."""
    global _last_request
    with _PACE:
        wait = _last_request + MIN_INTERVAL_S - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        try:
            return send()
        finally:
            _last_request = time.monotonic()


def _request(method: str, path: str, api_key: str, json: dict[str, Any] | None = None) -> dict[str, Any]:
    """One API call, its failures said in Studio's words."""
    httpx = import_sdk("httpx")
    base = os.environ.get(BASE_URL_ENV, BASE_URL).rstrip("/")
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
    for attempt in range(RATE_LIMITED_TRIES):
        try:
            response = _paced(lambda: httpx.request(method, base + path, json=json, timeout=TIMEOUT_S,
                                                    headers=headers))
        except httpx.HTTPError as exc:
            raise unreachable("lambda", f"Lambda's API could not be reached ({_first_line(exc)}).") from None
        if response.status_code != 429:
            break
        if attempt < RATE_LIMITED_TRIES - 1:
            time.sleep(2.0 * (attempt + 1))
    else:
        raise provider_error("lambda", "Lambda asked Studio to send fewer requests, and kept asking.")
    if response.status_code in {401, 403}:
        raise key_refused("lambda")
    try:
        answer = response.json()
    except ValueError:
        raise provider_error("lambda", f"The answer could not be read (HTTP {response.status_code}).") from None
    if not isinstance(answer, dict):
        raise provider_error("lambda", f"The answer could not be read (HTTP {response.status_code}).")
    if response.status_code == 404:
        raise _NotFoundError(path)
    if response.status_code >= 400:
        error = answer["error"] if isinstance(answer.get("error"), dict) else {}
        message = str(error.get("message") or f"HTTP {response.status_code}")
        suggestion = error.get("suggestion")
        raise provider_error("lambda", f"{message} {suggestion}" if suggestion else message)
    return answer


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__
