"""Terminating a rented run's machine when no runner is left to do it (Studio or the runner was killed).

The runner terminates its own machine on every ending; this is the way out for a machine it lost hold of:
`studio cloud stop RUN` with no runner alive, and the "Terminate the machine" choice Studio offers after a
restart. A runner killed while renting, before it saved the machine's id, leaves cloud.json in state
"renting" with no machine named: that machine is found by its name (studio-RUN_ID) and terminated too.
"""

from __future__ import annotations

import time
from pathlib import Path

from studio.engine.cloud.cloud_state import load_launch, save_launch
from studio.engine.cloud.connect import get_machines
from studio.engine.cloud.keys import load_api_key
from studio.engine.cloud.providers import machine_name


def release_machine(run_dir: Path) -> float | None:
    """Terminate the run's machine and record it as ended; returns what the run cost in all, in US dollars,
    or None when it had no machine left. The checkpoints copied back stay in the run's folder."""
    launch = load_launch(run_dir)
    if not launch.pod_id and launch.state != "renting":
        return None
    machines = get_machines(launch.provider)
    key = load_api_key(launch.provider)
    if launch.pod_id:
        machines.terminate(key, launch.pod_id)
        launch.spent_usd = launch.cost_so_far(time.time())
    else:  # renting, and the runner was killed before it saved the machine's id
        found = machines.find(key, machine_name(Path(run_dir).name))
        for machine in found:
            machines.terminate(key, machine.id)
            since = launch.renting_since or time.time()
            launch.spent_usd += max(time.time() - since, 0.0) * launch.price_per_hour / 3600.0
            launch.pods.append(machine.id)
        if not found:
            launch.state = "ended"
            launch.outcome = launch.outcome or "stopped"
            save_launch(run_dir, launch)
            return None
    launch.pod_id, launch.agent_url, launch.pod_started_at, launch.state = None, None, None, "ended"
    launch.outcome = launch.outcome or "stopped"
    save_launch(run_dir, launch)
    return launch.spent_usd
