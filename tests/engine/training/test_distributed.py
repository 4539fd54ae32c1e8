"""Scale-out through `accelerate launch`: the command Studio builds, rank gating, a real two-process
CPU data-parallel (gloo) training on the tiny model compared with a single-process run, and every rank
stopping, releasing, pausing and early-stopping at the same step as rank 0 (each run under a hard timeout,
so a rank stuck in a collective fails fast)."""

from __future__ import annotations

import json
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from safetensors.torch import load_file

from studio.engine.config import TrainConfig
from studio.engine.control import ControlCommand
from studio.engine.events import Error, Event, Stopped
from studio.engine.runs.folders import final_adapter_dir
from studio.engine.training import checkpoints
from studio.engine.training.distributed import anomaly_mode_for, is_main_process, launch_command, world_size
from studio.engine.training.supervisor import Supervisor, WorkerOutcome, rank0_exit_code, worker_command
from tests.engine.training.worker_runs import read_events, run_worker_process

WORKER = ["-m", "studio.engine.training.worker"]


def test_launch_command_for_one_machine(tmp_path: Path) -> None:
    command = launch_command(tmp_path, 4)
    assert command[0].endswith("accelerate") and command[1] == "launch"
    assert command[-3:] == [*WORKER, str(tmp_path)]
    flags = " ".join(command)
    assert "--multi_gpu" in flags and "--num_processes 4" in flags and "--num_machines 1" in flags
    assert launch_command(tmp_path, 1, cpu=True)[2:4] == ["--cpu", "--num_processes"]
    on_cpus = launch_command(tmp_path, 2, cpu=True)
    assert on_cpus[:3] == ["env", "CUDA_VISIBLE_DEVICES=", "ACCELERATE_USE_CPU=true"]


def test_launch_command_for_several_machines_and_a_config_file(tmp_path: Path) -> None:
    node = {"num_machines": 2, "machine_rank": 1, "main_process_ip": "10.0.0.1", "main_process_port": 29501}
    flags = " ".join(launch_command(tmp_path, 16, multi_node=node, config_file=tmp_path / "fsdp.yaml"))
    assert f"--config_file {tmp_path / 'fsdp.yaml'}" in flags
    assert "--num_machines 2 --machine_rank 1 --main_process_ip 10.0.0.1 --main_process_port 29501" in flags
    assert "--multi_gpu" not in flags  # the config file says DDP, FSDP or DeepSpeed


def test_rank_helpers_read_the_launcher_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert is_main_process() and world_size() == 1
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert not is_main_process() and world_size() == 2


def test_supervisor_launches_through_accelerate_when_the_config_asks(make_run) -> None:
    assert "launch" not in worker_command(make_run("single"))
    assert worker_command(make_run("double", num_processes=2))[1] == "launch"
    assert TrainConfig(num_processes=2, micro_batch_size=2, gradient_accumulation=3).effective_batch_size == 12


@pytest.mark.slow
def test_two_process_cpu_training_matches_a_single_process_run(make_run) -> None:
    settings = {"max_steps": 3, "eval_fraction": 0.0, "checkpoint_every_steps": 100, "micro_batch_size": 2}
    double = make_run("double", num_processes=2, **settings)
    seen = []
    supervisor = Supervisor(double, on_event=seen.append, env={"OMP_NUM_THREADS": "1"})
    supervisor.start()
    outcome = supervisor.wait(timeout=300)
    log = (double / "logs" / "worker.stderr.log").read_text()[-3000:]
    assert outcome.exit_code == 0, log
    records = read_events(double)
    kinds = [r["event"] for r in records]
    assert kinds.count("started") == 1 and kinds[-1] == "completed", kinds  # rank 0 alone speaks
    assert [e.kind for e in seen if e.kind != "heartbeat"] == [k for k in kinds if k != "heartbeat"]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    notes = [e.message for e in seen if e.kind == "heartbeat" and "not fix them automatically" in e.message]
    assert notes and notes[0].startswith("Training on 2 processes")  # recovery is left to the user

    # Rank 1 took part: the same world, the same steps, and (DDP averages gradients) the same weights.
    follower = json.loads((double / "logs" / "rank-1.json").read_text())
    assert follower["world_size"] == 2 and follower["steps"] == 3
    saved = load_file(str(final_adapter_dir(double) / "adapter_model.safetensors"))
    total = sum(float(t.double().sum()) for t in saved.values())
    assert follower["trainable_sum"] == pytest.approx(total, rel=1e-6, abs=1e-6)

    single = make_run("single", **settings)
    done = run_worker_process(single)
    assert done.returncode == 0, done.stderr[-2000:]
    alone = load_file(str(final_adapter_dir(single) / "adapter_model.safetensors"))
    assert {k: tuple(v.shape) for k, v in alone.items()} == {k: tuple(v.shape) for k, v in saved.items()}


RUN_TIMEOUT_S = 120  # a rank stuck in a collective fails the test here, long before gloo's own timeout
LOCKSTEP_SETTINGS = {"max_steps": 6, "eval_fraction": 0.0, "checkpoint_every_steps": 100, "micro_batch_size": 2}


def supervise(run_dir: Path, act: Callable[[Supervisor, Event], bool] | None = None, **faults: str) -> WorkerOutcome:
    """Run a distributed worker to its end; `act(supervisor, event)` sees each event until it returns True.
    The hard timeout kills the launcher, so a hang fails fast."""
    env = {"OMP_NUM_THREADS": "1"}
    if faults:
        env["STUDIO_TEST_FAULTS"] = ",".join(f"{k}={v}" for k, v in faults.items())
    done = threading.Event()
    holder: list[Supervisor] = []

    def on_event(event: Event) -> None:
        if act is not None and not done.is_set() and act(holder[0], event):
            done.set()

    supervisor = Supervisor(run_dir, on_event=on_event, env=env)
    holder.append(supervisor)
    supervisor.start()
    try:
        return supervisor.wait(timeout=RUN_TIMEOUT_S)
    finally:
        supervisor.kill()


def at_step_two(send: Callable[[Supervisor], bool]) -> Callable[[Supervisor, Event], bool]:
    def act(supervisor: Supervisor, event: Event) -> bool:
        return event.kind == "progress" and getattr(event, "step", 0) >= 2 and send(supervisor)

    return act


def assert_resumes_to_the_end(run_dir: Path) -> None:
    """A second two-rank worker finishes the run, and the follower took every step."""
    outcome = supervise(run_dir)
    assert outcome.exit_code == 0 and outcome.last_event is not None and outcome.last_event.kind == "completed"
    follower = json.loads((run_dir / "logs" / "rank-1.json").read_text())
    assert follower["world_size"] == 2 and follower["steps"] == LOCKSTEP_SETTINGS["max_steps"]


def stopped_step(run_dir: Path, kind: str) -> int:
    last = read_events(run_dir)[-1]
    assert last["event"] == kind, last
    good = checkpoints.latest_good(run_dir)
    assert good is not None and good.step == last["step"] < LOCKSTEP_SETTINGS["max_steps"]
    follower = json.loads((run_dir / "logs" / "rank-1.json").read_text())
    assert follower["steps"] == last["step"]  # the follower left the loop at the same step
    return int(last["step"])


@pytest.mark.slow
@pytest.mark.timeout(2 * RUN_TIMEOUT_S + 30)
@pytest.mark.parametrize(
    ("command", "exit_code", "status"),
    [(Supervisor.stop, 130, "stopped"), (Supervisor.pause_release, 0, "paused")],
    ids=["stop", "release"],
)
def test_a_stop_or_release_ends_every_rank_at_the_same_step_and_the_run_resumes(
    make_run, command, exit_code: int, status: str
) -> None:
    run_dir = make_run(status, num_processes=2, **LOCKSTEP_SETTINGS)
    outcome = supervise(run_dir, at_step_two(command), sleep_per_step="0.5")
    assert outcome.exit_code == exit_code and outcome.status == status, outcome
    stopped_step(run_dir, status)
    assert_resumes_to_the_end(run_dir)


def test_the_launchers_exit_code_1_is_read_as_rank_0_meant_it() -> None:
    assert rank0_exit_code(1, Stopped(run_id="r", step=3)) == 130
    assert rank0_exit_code(1, Error(run_id="r", code="oom", message="m", exit_code=3)) == 3
    assert rank0_exit_code(1, None) == 1 and rank0_exit_code(0, Stopped(run_id="r", step=3)) == 0


def sigterm_the_launcher(supervisor: Supervisor) -> bool:
    """What a shutdown does: torchrun forwards SIGTERM to every rank at once."""
    assert supervisor.pid is not None
    os.kill(supervisor.pid, signal.SIGTERM)
    return True


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_sigterm_reaching_every_rank_stops_them_together_with_a_checkpoint(make_run) -> None:
    run_dir = make_run("sigterm", num_processes=2, **LOCKSTEP_SETTINGS)
    outcome = supervise(run_dir, at_step_two(sigterm_the_launcher), sleep_per_step="0.5")
    assert outcome.exit_code == 130 and outcome.status == "stopped", outcome
    stopped_step(run_dir, "stopped")


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_early_stopping_on_rank_0_ends_every_rank_and_completes(make_run) -> None:
    settings = {**LOCKSTEP_SETTINGS, "eval_fraction": 0.2, "eval_every_steps": 1}
    run_dir = make_run("early", num_processes=2, early_stopping_patience=1, early_stopping_min_delta=100.0, **settings)
    outcome = supervise(run_dir)
    assert outcome.exit_code == 0 and outcome.status == "completed", outcome
    completed = read_events(run_dir)[-1]
    assert completed["metrics"]["early_stopped"] and completed["metrics"]["restored_best_step"] == 1
    follower = json.loads((run_dir / "logs" / "rank-1.json").read_text())
    assert follower["steps"] == completed["step"] == 2


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_a_pause_holds_every_rank_a_checkpoint_can_be_taken_meanwhile_and_resume_completes(make_run) -> None:
    run_dir = make_run("hold", num_processes=2, **LOCKSTEP_SETTINGS)

    def act(supervisor: Supervisor, event: Event) -> bool:
        """Pause at step 2; once paused ask for a checkpoint; once it is written, resume."""
        if event.kind == "progress" and getattr(event, "step", 0) >= 2:
            supervisor.pause()
        elif event.kind == "paused":
            supervisor.send(ControlCommand("checkpoint"))
        elif event.kind == "checkpoint":
            return supervisor.resume()
        return False

    outcome = supervise(run_dir, act, sleep_per_step="0.5")
    assert outcome.exit_code == 0 and outcome.status == "completed", outcome
    control = {"paused", "checkpoint", "resumed"}
    kinds = [(r["event"], r.get("reason")) for r in read_events(run_dir) if r["event"] in control]
    assert kinds[:3] == [("paused", "user"), ("checkpoint", "requested"), ("resumed", None)], kinds
    follower = json.loads((run_dir / "logs" / "rank-1.json").read_text())
    assert follower["steps"] == LOCKSTEP_SETTINGS["max_steps"]


def test_recovery_is_left_to_the_user_when_training_on_several_processes() -> None:
    assert anomaly_mode_for("auto", 1) == "auto" and anomaly_mode_for("ask", 1) == "ask"
    assert anomaly_mode_for("auto", 2) == "off" and anomaly_mode_for("ask", 8) == "off"
