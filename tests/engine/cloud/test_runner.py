"""The cloud runner end to end: a fake RunPod (tests/engine/cloud/fake_runpod.py) whose pods are the real run
agent on 127.0.0.1, training the tiny model through the bundle's launch.sh, and the runner supervised exactly
as a local worker is (Supervisor with its command): events on stdout and in the run's events.jsonl, control on
stdin. Nothing here reaches the network."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from studio.engine.cloud import save_api_key
from studio.engine.cloud.agent import TOKEN_ENV
from studio.engine.cloud.cloud_state import (
    TOKEN_SERVICE,
    agent_token,
    cloud_file,
    load_launch,
    save_launch,
    write_launch,
)
from studio.engine.cloud.providers import MachineRequest, machine_name
from studio.engine.cloud.release import release_machine
from studio.engine.cloud.runpod_api import RunPodPods
from studio.engine.events import Event, parse_event
from studio.engine.runs.folders import events_file, final_adapter_dir
from studio.engine.runs.registry import Registry
from studio.engine.secrets import load_secret
from studio.engine.training.checkpoints import list_checkpoints, verify
from studio.engine.training.supervisor import Supervisor, WorkerOutcome
from tests.cloud_server import closed_port_url
from tests.engine.cloud.fake_runpod import GOOD_KEY, FakeRunPodPods, fake_runpod_pods
from tests.engine.cloud.test_agent import _queued_run, _told

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="the bundle's launch script is a bash script")

GPU = "NVIDIA GeForce RTX 4090"
RUNNER = [sys.executable, "-m", "studio.engine.cloud.runner"]


@pytest.fixture
def runpod(monkeypatch, tmp_path) -> FakeRunPodPods:
    with fake_runpod_pods(monkeypatch, tmp_path) as api:
        save_api_key("runpod", GOOD_KEY)
        yield api


def _cloud_run(tiny_model_dir: Path, *, price: float = 0.34, budget: float = 5.0, spot: bool = False,
               **settings: object) -> Path:
    run_dir = _queued_run(tiny_model_dir, **settings)
    write_launch(run_dir, "runpod", GPU, spot=spot, cloud="community", budget_usd=budget, price_per_hour=price)
    return run_dir


class Runner:
    """The runner process under a Supervisor, as `studio cloud train` and the dashboard run it."""

    def __init__(self, run_dir: Path, on_event: Callable[[Event], None] | None = None) -> None:
        self.events: list[Event] = []
        self.bad: list[str] = []

        def seen(event: Event) -> None:
            self.events.append(event)
            if on_event is not None:
                on_event(event)

        self.supervisor = Supervisor(run_dir, on_event=seen, on_bad_line=self.bad.append,
                                     command=[*RUNNER, str(run_dir)])
        self.supervisor.start()

    def wait(self, timeout: float = 150) -> WorkerOutcome:
        return self.supervisor.wait(timeout)

    def told(self) -> list[Event]:
        return [event for event in _told(self.events)]

    def costs(self) -> list[float]:
        return [event.extra["cost_usd"] for event in self.events
                if event.kind == "heartbeat" and event.phase == "cloud_cost"]


def _training(run_dir: Path) -> Runner:
    """A runner whose remote run has passed on its first progress event."""
    progressed = threading.Event()
    runner = Runner(run_dir, on_event=lambda event: event.kind == "progress" and progressed.set())
    assert progressed.wait(120), _stderr(run_dir)
    return runner


def _recorded(run_dir: Path) -> list[Event]:
    return [parse_event(line) for line in events_file(run_dir).read_text().splitlines() if line.strip()]


def _stderr(run_dir: Path) -> str:
    log = run_dir / "logs" / "worker.stderr.log"
    return log.read_text()[-3000:] if log.is_file() else ""


@pytest.mark.slow
def test_a_rented_run_completes_comes_back_as_a_version_and_its_pod_is_terminated(runpod, tiny_model_dir):
    run_dir = _cloud_run(tiny_model_dir, max_steps=4, checkpoint_every_steps=2)
    runner = Runner(run_dir)
    outcome = runner.wait()
    assert (outcome.status, outcome.exit_code) == ("completed", 0), _stderr(run_dir)
    kinds = [event.kind for event in runner.told()]
    assert kinds[0] == "started" and kinds[-1] == "completed" and "checkpoint" in kinds
    assert not runner.bad

    # The same events are in the run's own record, numbered on as a local worker numbers them.
    recorded = _recorded(run_dir)
    assert [event.seq for event in recorded] == list(range(1, len(recorded) + 1))
    assert [event.kind for event in recorded] == [event.kind for event in runner.events]

    # Checkpoints came back as they sealed, with local paths in their events.
    synced = list_checkpoints(run_dir)
    assert synced and all(verify(info.path) is None for info in synced)
    for event in runner.told():
        if event.kind == "checkpoint":
            assert Path(event.path).parent == run_dir / "checkpoints"

    # A running cost, from the launch's price, that never passes the budget.
    costs = runner.costs()
    assert costs and costs == sorted(costs) and 0 < costs[-1] < 5.0

    # The result is a normal version in the library; the pod is terminated and nothing bills.
    done = runner.told()[-1]
    launch = load_launch(run_dir)
    assert launch.outcome == "completed" and launch.imported_run_id and launch.pod_id is None
    record = Registry().get(launch.imported_run_id)
    assert record is not None and record.status == "completed" and record.version == "1.0.1"
    assert record.parent_id == run_dir.name
    assert done.adapter_path == str(final_adapter_dir(record.run_dir))
    assert (final_adapter_dir(record.run_dir) / "adapter_model.safetensors").is_file()
    assert Registry().get(run_dir.name).status == "completed"
    assert runpod.created == launch.pods and len(launch.pods) == 1
    assert runpod.terminated == launch.pods and runpod.billing() == []

    # The pod got the agent as its start command and the token in its env; the token is in no file.
    pod = runpod.pods[launch.pods[0]]
    assert "studio.engine.cloud.agent" in pod.docker_args and pod.ports == "8765/http"
    token = load_secret(TOKEN_SERVICE, run_dir.name, "token")
    assert token and pod.env["STUDIO_AGENT_TOKEN"] == token
    assert token not in cloud_file(run_dir).read_text()
    assert any("podFindAndDeployOnDemand" in query for query in runpod.queries)


@pytest.mark.slow
def test_the_budget_cap_stops_the_run_keeps_its_checkpoint_and_terminates_the_pod(runpod, tiny_model_dir):
    # $80/h against a $1 budget: the cap comes after about 45 s, well into training.
    run_dir = _cloud_run(tiny_model_dir, price=80.0, budget=1.0, max_steps=5000, checkpoint_every_steps=1000)
    runner = Runner(run_dir)
    outcome = runner.wait()
    assert (outcome.status, outcome.exit_code) == ("stopped", 130), _stderr(run_dir)
    told = runner.told()
    assert "started" in [event.kind for event in told]
    # (the remote worker's own anomalies, a throughput drop on a busy machine say, are passed on too)
    reached = [event for event in told if event.kind == "anomaly" and event.anomaly == "cloud_budget_reached"]
    assert len(reached) == 1 and "$1.00" in reached[0].message
    stopped = told[-1]
    assert stopped.kind == "stopped" and stopped.reason == "budget"
    assert stopped.checkpoint_path and Path(stopped.checkpoint_path).parent == run_dir / "checkpoints"
    assert verify(Path(stopped.checkpoint_path)) is None  # the stop sealed it and it came back
    assert runner.costs()[-1] >= 1.0
    launch = load_launch(run_dir)
    assert launch.outcome == "budget" and launch.pod_id is None
    assert runpod.terminated == launch.pods and runpod.billing() == []
    assert Registry().get(run_dir.name).status == "stopped"


@pytest.mark.slow
def test_a_preempted_spot_pod_is_replaced_and_the_run_resumes_from_the_synced_checkpoint(runpod, tiny_model_dir):
    run_dir = _cloud_run(tiny_model_dir, spot=True, max_steps=8, checkpoint_every_steps=3)
    taken: list[str] = []

    def take_back(event: Event) -> None:
        if event.kind == "checkpoint" and not taken:
            taken.append(runpod.created[-1])
            runpod.preempt(taken[0])  # the machine goes at once, mid-training

    runner = Runner(run_dir, on_event=take_back)
    outcome = runner.wait()
    assert (outcome.status, outcome.exit_code) == ("completed", 0), _stderr(run_dir)
    told = runner.told()
    first_checkpoint = next(event for event in told if event.kind == "checkpoint").step
    recovery = [event for event in told if event.kind == "recovery"]
    assert len(recovery) == 1 and recovery[0].action == "cloud_new_machine"
    assert f"step {first_checkpoint}" in recovery[0].message
    started = [event for event in told if event.kind == "started"]
    assert len(started) == 2 and started[1].resumed_from_step == first_checkpoint
    assert told[-1].kind == "completed" and told[-1].metrics["steps"] == 8
    launch = load_launch(run_dir)
    assert len(launch.pods) == 2 and launch.pods[0] == taken[0]
    assert sorted(runpod.terminated) == sorted(launch.pods) and runpod.billing() == []
    assert sum("podRentInterruptable" in query for query in runpod.queries) == 2
    assert launch.spent_usd > 0 and Registry().get(launch.imported_run_id).status == "completed"


@pytest.mark.slow
def test_a_runner_killed_while_remote_reattaches_when_started_again(runpod, tiny_model_dir):
    run_dir = _cloud_run(tiny_model_dir, max_steps=6, checkpoint_every_steps=3)
    first = _training(run_dir)
    first.supervisor.kill()  # SIGKILL: no time to terminate anything
    assert first.wait().status == "interrupted"
    launch = load_launch(run_dir)
    assert launch.state == "running" and launch.pod_id and runpod.billing() == [launch.pod_id]

    second = Runner(run_dir)
    outcome = second.wait()
    assert (outcome.status, outcome.exit_code) == ("completed", 0), _stderr(run_dir)
    assert any(event.kind == "heartbeat" and "Reattached" in event.message for event in second.events)
    assert runpod.created == [launch.pod_id]  # no second pod
    assert runpod.terminated == [launch.pod_id] and runpod.billing() == []
    recorded = _recorded(run_dir)
    kinds = [event.kind for event in recorded]
    assert kinds.count("started") == 1 and kinds.count("completed") == 1
    seqs = [event.seq for event in recorded]
    assert seqs == sorted(set(seqs))
    steps = [event.step for event in recorded if event.kind == "progress"]
    assert steps == sorted(set(steps))  # no remote event passed on twice


@pytest.mark.slow
def test_sigterm_stops_the_remote_run_and_terminates_the_pod(runpod, tiny_model_dir):
    run_dir = _cloud_run(tiny_model_dir, max_steps=5000, checkpoint_every_steps=1000)
    runner = _training(run_dir)
    os.kill(runner.supervisor.pid, signal.SIGTERM)  # Studio is closing
    outcome = runner.wait()
    assert (outcome.status, outcome.exit_code) == ("stopped", 130), _stderr(run_dir)
    assert runner.told()[-1].kind == "stopped"
    assert list_checkpoints(run_dir)  # the stop's checkpoint came back before the pod went
    assert runpod.terminated == load_launch(run_dir).pods and runpod.billing() == []


def test_a_wrong_api_key_is_said_plainly_and_creates_nothing(runpod, tiny_model_dir):
    save_api_key("runpod", "rpa_wrong")
    run_dir = _cloud_run(tiny_model_dir, max_steps=2)
    runner = Runner(run_dir)
    outcome = runner.wait(60)
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    error = runner.told()[-1]
    assert error.kind == "error" and error.code == "cloud_key_refused"
    assert error.message == "RunPod refused the API key." and "Nothing was created" in error.hint
    assert not [query for query in runpod.queries if "mutation" in query]
    assert runpod.created == [] and load_launch(run_dir).pods == []
    assert Registry().get(run_dir.name).status == "failed"


def test_an_unreachable_provider_gives_the_offline_message(runpod, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("RUNPOD_API_BASE_URL", closed_port_url())
    run_dir = _cloud_run(tiny_model_dir, max_steps=2)
    runner = Runner(run_dir)
    outcome = runner.wait(60)
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    error = runner.told()[-1]
    assert error.code == "cloud_offline" and error.message == "Studio cannot reach RunPod right now."
    assert runpod.created == []


def test_a_pod_whose_agent_never_starts_is_terminated_with_a_plain_error(runpod, tiny_model_dir):
    runpod.no_agent = True
    run_dir = _cloud_run(tiny_model_dir, max_steps=2)
    launch = load_launch(run_dir)
    launch.agent_timeout_s = 3
    save_launch(run_dir, launch)
    runner = Runner(run_dir)
    outcome = runner.wait(60)
    assert (outcome.status, outcome.exit_code) == ("failed", 1)
    error = runner.told()[-1]
    assert error.code == "cloud_agent_timeout" and "did not start" in error.message
    assert runpod.terminated == runpod.created and len(runpod.created) == 1 and runpod.billing() == []


def test_a_run_without_cloud_settings_is_refused_plainly(runpod, tiny_model_dir):
    run_dir = _queued_run(tiny_model_dir, max_steps=2)
    runner = Runner(run_dir)
    outcome = runner.wait(60)
    assert outcome.exit_code == 1
    error = runner.told()[-1]
    assert error.code == "cloud_no_launch" and "cloud.json" in error.message
    assert runpod.created == [] and runpod.queries == []  # nothing asked of the provider


def _created_then_lost(runpod: FakeRunPodPods, tiny_model_dir: Path) -> tuple[Path, str]:
    """A runner killed between RunPod's answer to the create call and saving it: a pod named for the run is
    up, and cloud.json says "renting" with no pod."""
    run_dir = _cloud_run(tiny_model_dir, max_steps=4, checkpoint_every_steps=2)
    request = MachineRequest(name=machine_name(run_dir.name), gpu_id=GPU, spot=False, cloud="community",
                             bid_per_gpu=0.34, env={TOKEN_ENV: agent_token(run_dir.name)})
    pod_id = RunPodPods().create(GOOD_KEY, request)
    launch = load_launch(run_dir)
    launch.state = "renting"
    save_launch(run_dir, launch)
    return run_dir, pod_id


@pytest.mark.slow
def test_a_runner_killed_while_renting_finds_its_pod_by_name_and_trains_on_it(runpod, tiny_model_dir):
    run_dir, pod_id = _created_then_lost(runpod, tiny_model_dir)
    runner = Runner(run_dir)
    outcome = runner.wait()
    assert (outcome.status, outcome.exit_code) == ("completed", 0), _stderr(run_dir)
    assert any(event.kind == "heartbeat" and "lost track" in (event.message or "") for event in runner.events)
    assert runpod.created == [pod_id]  # never a second pod beside the one that is alive
    assert runpod.terminated == [pod_id] and runpod.billing() == []
    assert load_launch(run_dir).pods == [pod_id]


@pytest.mark.slow
def test_a_lost_pod_that_has_exited_is_terminated_and_a_new_one_rented(runpod, tiny_model_dir):
    run_dir, pod_id = _created_then_lost(runpod, tiny_model_dir)
    runpod.preempt(pod_id)
    outcome = Runner(run_dir).wait()
    assert (outcome.status, outcome.exit_code) == ("completed", 0), _stderr(run_dir)
    assert runpod.created[0] == pod_id and len(runpod.created) == 2
    assert sorted(runpod.terminated) == sorted(runpod.created) and runpod.billing() == []


def test_release_finds_and_terminates_a_pod_a_killed_runner_never_saved(runpod, tiny_model_dir):
    run_dir, pod_id = _created_then_lost(runpod, tiny_model_dir)
    assert [machine.id for machine in RunPodPods().find(GOOD_KEY, machine_name(run_dir.name))] == [pod_id]
    spent = release_machine(run_dir)
    assert spent is not None and spent >= 0
    assert runpod.terminated == [pod_id] and runpod.billing() == []
    assert load_launch(run_dir).state == "ended"
    assert RunPodPods().find(GOOD_KEY, machine_name(run_dir.name)) == []


@pytest.mark.slow
def test_a_runner_killed_before_it_saved_its_new_pod_finds_it_by_name_when_started_again(runpod, tiny_model_dir):
    runpod.create_delay_s = 20.0  # the pod exists, but RunPod's answer has not reached the runner yet
    run_dir = _cloud_run(tiny_model_dir, max_steps=4, checkpoint_every_steps=2)
    first = Runner(run_dir)
    deadline = time.monotonic() + 60
    while not runpod.created and time.monotonic() < deadline:
        time.sleep(0.1)
    assert runpod.created, _stderr(run_dir)
    first.supervisor.kill()  # SIGKILL while the create call is still waiting for its answer
    first.wait()
    launch = load_launch(run_dir)
    assert launch.state == "renting" and launch.pod_id is None and runpod.billing() == runpod.created
    runpod.create_delay_s = 0.0

    second = Runner(run_dir)
    outcome = second.wait()
    assert (outcome.status, outcome.exit_code) == ("completed", 0), _stderr(run_dir)
    assert len(runpod.created) == 1  # carried on with the pod it had lost, no second one
    assert runpod.terminated == runpod.created and runpod.billing() == []
    assert load_launch(run_dir).pods == runpod.created
