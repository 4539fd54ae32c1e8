"""A rented run's launch choice and where it stands, kept in RUN_DIR/cloud.json.

The wizard or `studio cloud train` writes the choice with `write_launch` before the cloud runner starts
(`python -m studio.engine.cloud.runner RUN_DIR`); the runner adds the pod it rented, the agent's address and
how far it has read the remote record, so a runner started again on the folder reattaches to a live pod
instead of renting another. The agent's token is never written here: it is in the system keyring
(`agent_token`). docs/cloud.md lists the fields.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from studio.engine.cloud.providers import provider_name
from studio.engine.errors import StudioError
from studio.engine.secrets import load_secret, save_secret

CLOUD_FILE = "cloud.json"
CLOUD_FORMAT = 1
TOKEN_SERVICE = "studio-cloud-agent"  # keyring: one token per run, under the run's id


@dataclass
class CloudLaunch:
    provider: str
    gpu_id: str
    spot: bool
    cloud: str  # "secure" or "community"
    budget_usd: float
    price_per_hour: float
    keep_running: bool = False  # leave the pod running when the runner ends (the user terminates it)
    agent_timeout_s: float | None = None  # how long a new pod may take to start the agent (default 15 min)
    # Written by the runner:
    pod_id: str | None = None
    agent_url: str | None = None
    pod_started_at: float | None = None  # epoch seconds: the current pod bills from here
    event_offset: int = 0  # bytes of the current pod's events.jsonl already read
    remote_seq: int = 0  # the last remote event passed on (none twice after a reattach)
    spent_usd: float = 0.0  # what earlier pods of this run cost (a preempted one, say)
    pods: list[str] = field(default_factory=list)  # every pod rented for this run, in order
    renting_since: float | None = None  # epoch seconds: when the last create call was sent (state "renting")
    state: str = "new"  # new, renting, running, ended
    outcome: str | None = None  # completed, stopped, budget, paused, failed, interrupted
    imported_run_id: str | None = None  # the library version the result came back as
    format: int = CLOUD_FORMAT

    def cost_so_far(self, now: float) -> float:
        """US dollars billed for this run: earlier pods plus the current one since it was created."""
        current = (now - self.pod_started_at) * self.price_per_hour / 3600.0 if self.pod_started_at else 0.0
        return self.spent_usd + max(current, 0.0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def cloud_file(run_dir: Path) -> Path:
    return Path(run_dir) / CLOUD_FILE


def write_launch(run_dir: Path, provider: str, gpu_id: str, *, spot: bool, cloud: str, budget_usd: float,
                 price_per_hour: float, keep_running: bool = False) -> CloudLaunch:
    """Record what to rent for this run (before the runner starts) and give it a fresh agent token. A new
    launch of a run that trained before starts a new budget; one whose machine is still rented is refused."""
    provider_name(provider)  # a plain error for a provider Studio does not know
    if cloud not in {"secure", "community"}:
        raise ValueError(f"cloud must be 'secure' or 'community', not {cloud!r}")
    if budget_usd <= 0 or price_per_hour <= 0:
        raise ValueError("the budget and the price must be above zero")
    if cloud_file(run_dir).is_file():
        earlier = load_launch(run_dir)
        if earlier.pod_id or earlier.state == "renting":  # its runner reattaches to that machine (or finds it
            # by name): a new launch would leave it billing
            raise StudioError(
                what="This run already has a rented machine.",
                why=f"Its machine {earlier.pod_id} may still be training it." if earlier.pod_id else
                    "Studio was renting one for it when it was closed, and may not have heard back.",
                actions=["Start the run again to reattach to it (`studio cloud train RUN`).",
                         "Or stop it and terminate the machine first: `studio cloud stop RUN`."],
                code="cloud_run_has_machine",
            )
    launch = CloudLaunch(provider, gpu_id, spot, cloud, float(budget_usd), float(price_per_hour), keep_running)
    save_launch(run_dir, launch)
    new_agent_token(Path(run_dir).name)
    return launch


def load_launch(run_dir: Path) -> CloudLaunch:
    path = cloud_file(run_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        known = {item.name for item in fields(CloudLaunch)}
        return CloudLaunch(**{key: value for key, value in data.items() if key in known})
    except FileNotFoundError:
        raise StudioError(
            what="This run has no rented-GPU settings (cloud.json), so it cannot train on a rented GPU.",
            why=f"Studio looked for {path}.",
            actions=["Start it with `studio cloud train --gpu GPU --budget USD RUN`, which writes them."],
            code="cloud_no_launch",
        ) from None
    except (ValueError, TypeError, OSError) as exc:
        raise StudioError(
            what="This run's rented-GPU settings (cloud.json) cannot be read.",
            why=f"{path}: {exc}",
            actions=["Start it again with `studio cloud train`, which writes them anew.",
                     "Check the provider's console for a machine this run left running, and terminate it."],
            code="cloud_launch_invalid",
        ) from None


def save_launch(run_dir: Path, launch: CloudLaunch) -> None:
    """Written aside and renamed, so a runner killed mid-write leaves the previous state whole."""
    path = cloud_file(run_dir)
    partial = path.with_name(f".{CLOUD_FILE}.{os.getpid()}.part")
    partial.write_text(json.dumps(launch.to_dict(), indent=2) + "\n", encoding="utf-8")
    partial.replace(path)


def new_agent_token(run_id: str) -> str:
    token = secrets.token_hex(24)
    save_secret(TOKEN_SERVICE, run_id, token, "the rented machine's access token")
    return token


def agent_token(run_id: str) -> str:
    token = load_secret(TOKEN_SERVICE, run_id, "the rented machine's access token")
    return token or new_agent_token(run_id)
