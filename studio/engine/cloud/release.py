"""Terminating a rented run's machine when no runner is left to do it (Studio or the runner was killed).

The runner terminates its own machine on every ending; this is the way out for a machine it lost hold of:
`studio cloud stop RUN` with no runner alive, and the "Terminate the machine" choice Studio offers after a
restart.
"""

from __future__ import annotations

import time
from pathlib import Path

from studio.engine.cloud.cloud_state import load_launch, save_launch
from studio.engine.cloud.connect import get_machines
from studio.engine.cloud.keys import load_api_key


def release_machine(run_dir: Path) -> float | None:
    """Terminate the run's machine and record it as ended; returns what the run cost in all, in US dollars,
    or None when it had no machine left. The checkpoints copied back stay in the run's folder."""
    launch = load_launch(run_dir)
    if not launch.pod_id:
        return None
    get_machines(launch.provider).terminate(load_api_key(launch.provider), launch.pod_id)
    launch.spent_usd = launch.cost_so_far(time.time())
    launch.pod_id, launch.agent_url, launch.pod_started_at, launch.state = None, None, None, "ended"
    launch.outcome = launch.outcome or "stopped"
    save_launch(run_dir, launch)
    return launch.spent_usd
