"""The cloud runner: trains one run on a rented GPU and speaks the local worker's protocol, so the dashboard
and `studio train` supervise it exactly like a local run.

    python -m studio.engine.cloud.runner RUN_DIR

It reads the launch choice from RUN_DIR/cloud.json (cloud_state.write_launch), rents a pod running the run
agent, uploads the bundle, starts it and passes the remote events on as its own: JSON lines on stdout and
appended to RUN_DIR/events.jsonl, the same Event types as the worker. Control commands arrive as JSON lines on
stdin (pause, pause_release, resume, stop) and go to the agent. Along the way it copies each checkpoint back
as it seals, reports the running cost (a `heartbeat` with phase "cloud_cost" and `cost_usd`/`budget_usd`
fields), stops the run at the budget cap, rents a new pod and resumes from the last synced checkpoint when
the machine is taken back, and brings the result into the library as a new version. The pod is terminated
whatever the ending (completed, stopped, budget, error, SIGTERM or SIGHUP) unless cloud.json says
keep_running. Started again on a folder whose pod is still alive (the runner was killed), it reattaches.

Exit codes are the worker's: 0 completed (or paused with the machine returned), 130 stopped (by the user or
at the budget), 1 failed.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from types import FrameType

from studio.engine.cloud.agent import TOKEN_ENV
from studio.engine.cloud.cloud_state import CloudLaunch, agent_token, load_launch, save_launch
from studio.engine.cloud.connect import get_machines
from studio.engine.cloud.keys import load_api_key
from studio.engine.cloud.providers import Machine, MachineRequest, Machines, machine_name, provider_name
from studio.engine.cloud.remote_run import AgentStatus, RemoteRun
from studio.engine.errors import ExitCode, StudioError
from studio.engine.events import Anomaly, Checkpoint, Completed, Error, Event, Heartbeat, Recovery, Stopped
from studio.engine.handoff import export_bundle
from studio.engine.runs.folders import events_file, final_adapter_dir
from studio.engine.runs.registry import Registry, Status
from studio.engine.training.checkpoints import PREFIX, checkpoints_dir, latest_good
from studio.engine.training.control_channel import ControlChannel
from studio.engine.training.sinks import EventEmitter, FileSink, StreamSink, highest_mark, last_seq

POLL_WAIT_S = 2  # the agent holds an events request this long: commands and the budget are checked between
COST_EVERY_S = 5.0
AGENT_START_TIMEOUT_S = 900.0  # image pull and install on a real pod; cloud.json's agent_timeout_s overrides
STOP_WAIT_S = 180.0  # a stop (budget, user, shutdown) waits this long for the checkpoint before terminating
LOST_AFTER = 4  # failed requests in a row, pod still listed: the machine is treated as lost
MAX_PODS = 5  # machines rented for one run, resumes included

OUTCOME_EXIT = {"completed": 0, "paused": 0, "stopped": int(ExitCode.STOPPED), "budget": int(ExitCode.STOPPED),
                "failed": 1, "interrupted": 1}
OUTCOME_STATUS: dict[str, Status] = {"completed": "completed", "paused": "paused", "stopped": "stopped",
                                     "budget": "stopped", "failed": "failed", "interrupted": "interrupted"}


class _MachineLostError(Exception):
    """The rented machine is gone (preempted, or lost): resume on a new one."""


class CloudRunner:
    def __init__(self, run_dir: Path, emitter: EventEmitter, channel: ControlChannel | None = None,
                 pods: Machines | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.run_id = self.run_dir.name
        self.emitter = emitter
        self.launch: CloudLaunch = load_launch(self.run_dir)
        self.pods = pods or get_machines(self.launch.provider)
        # stdin and RUN_DIR/control/ (`studio stop RUN`, `studio cloud stop RUN`), as for a local worker
        self.channel = channel or ControlChannel(self.run_dir)
        self.shutdown = threading.Event()
        self.key = ""
        self.remote: RemoteRun | None = None
        self._stopping: str | None = None  # why a stop was sent: "user", "budget" or "shutdown"
        self._stop_deadline = 0.0
        self._last_cost = 0.0
        self._completed: Completed | None = None

    # ---- the whole run -----------------------------------------------------------------------------

    def run(self) -> int:
        registry = Registry()
        registry.mark_running(self.run_id)
        outcome = "failed"
        try:
            provider_name(self.launch.provider)
            self.key = load_api_key(self.launch.provider)
            outcome = self._train()
        except StudioError as error:
            self._error(error)
        except Exception as exc:  # a bug: said in words, and the pod still terminated below
            self._error(StudioError(what="The cloud run failed unexpectedly.", why=f"{type(exc).__name__}: {exc}",
                                    actions=["Check the provider's console that no machine is left running.",
                                             "Report it with the run's events.jsonl attached."],
                                    code="cloud_runner_failed"))
        finally:
            if not self._end_pod():
                outcome = "failed"
        self.launch.outcome = outcome
        save_launch(self.run_dir, self.launch)
        metrics = dict(self._completed.metrics) if self._completed else None
        registry.mark_finished(self.run_id, OUTCOME_STATUS[outcome], OUTCOME_EXIT[outcome], metrics=metrics)
        if self.launch.imported_run_id:
            registry.add_note(self.run_id, f"Trained on a rented {self.launch.gpu_id}; the result is in the "
                              f"library as run {self.launch.imported_run_id}.")
        return OUTCOME_EXIT[outcome]

    def _train(self) -> str:
        launch = self.launch
        if launch.state == "renting" and not launch.pod_id:
            self._find_lost_machine()  # killed between the provider's answer and saving it
        on_machine = False
        if launch.pod_id and launch.state in {"renting", "running"}:
            state = self.pods.get(self.key, launch.pod_id).state
            if state in {"running", "starting"}:
                on_machine = True
                passed_on = highest_mark(events_file(self.run_dir), "cloud_pod", launch.pod_id, "cloud_seq")
                launch.remote_seq = max(launch.remote_seq, passed_on)
                self._say(f"Reattached to the rented machine {launch.pod_id}; reading on from where Studio left off.")
            else:
                self._retire_pod()
        if not on_machine and launch.outcome == "completed" and launch.imported_run_id:
            raise StudioError(what="This run has already trained on a rented GPU.",
                              actions=["Train a new version: `studio cloud train` with the same options."],
                              code="cloud_run_finished")
        while True:
            try:
                outcome = self._start_on_machine() if on_machine else self._rent()
                return outcome or self._follow()
            except _MachineLostError:
                self._retire_pod()
                on_machine = False
                outcome = self._resume_elsewhere()
                if outcome:
                    return outcome

    def _find_lost_machine(self) -> None:
        """cloud.json says a machine was being rented but names none: the runner was killed between the
        provider's answer and saving it. The machine is looked up by its name (studio-RUN_ID) and carried on
        with when it is alive, so a second one is never rented beside it; one that has exited is terminated."""
        launch = self.launch
        found = self.pods.find(self.key, machine_name(self.run_id))
        alive = next((machine for machine in found if machine.state in {"running", "starting"}), None)
        since = launch.renting_since or time.time()
        for machine in found:
            if machine is not alive:
                with contextlib.suppress(StudioError):
                    self.pods.terminate(self.key, machine.id)
                launch.spent_usd += max(time.time() - since, 0.0) * launch.price_per_hour / 3600.0
        if alive is not None:
            launch.pod_id, launch.agent_url, launch.pod_started_at = alive.id, None, since
            launch.event_offset, launch.remote_seq, launch.state = 0, 0, "running"
            launch.pods.append(alive.id)
            self._say(f"Found the rented machine {alive.id}, which Studio had lost track of while renting it.")
        save_launch(self.run_dir, launch)

    # ---- renting -----------------------------------------------------------------------------------

    def _rent(self) -> str | None:
        """Rent a machine, wait for its agent, upload the bundle (with the last good checkpoint) and start it.
        Returns an outcome when it ends before training (budget, a stop asked meanwhile)."""
        launch = self.launch
        if launch.cost_so_far(time.time()) >= launch.budget_usd:
            return self._budget_reached(before_start=True)
        if len(launch.pods) >= MAX_PODS:
            raise StudioError(what=f"Studio has rented {MAX_PODS} machines for this run, and none kept it to the end.",
                              why="Each one was taken back or lost before the run completed.",
                              actions=["Rent on-demand instead of spot: it is not taken back.",
                                       "Continue later: the checkpoints synced so far are in the run's folder."],
                              code="cloud_too_many_pods")
        token = agent_token(self.run_id)
        kind = "spot" if launch.spot else "on-demand"
        self._say(f"Renting a {launch.gpu_id} on {provider_name(launch.provider)} ({kind}, "
                  f"${launch.price_per_hour:.2f}/h).")
        launch.state, launch.renting_since = "renting", time.time()
        save_launch(self.run_dir, launch)
        request = MachineRequest(name=machine_name(self.run_id), gpu_id=launch.gpu_id, spot=launch.spot,
                                 cloud="secure" if launch.cloud == "secure" else "community",
                                 bid_per_gpu=launch.price_per_hour, env={TOKEN_ENV: token})
        pod_id = self.pods.create(self.key, request)
        # The agent's address, when the provider knows it from the id alone (RunPod's proxy); a provider that
        # gives an address only once the machine has booted (Lambda's IP) has it read in _wait_for_agent.
        launch.pod_id, launch.pod_started_at = pod_id, launch.renting_since
        launch.agent_url = self.pods.agent_url(Machine(pod_id, "starting"))
        launch.event_offset, launch.remote_seq, launch.state = 0, 0, "running"
        launch.pods.append(pod_id)
        save_launch(self.run_dir, launch)
        return self._start_on_machine()

    def _start_on_machine(self) -> str | None:
        """Wait for the current machine's agent; send the run and start it unless it has it already (a
        reattach to a machine that trains). Returns an outcome when it ends before training."""
        token = agent_token(self.run_id)
        self.remote = RemoteRun(self.launch.agent_url, token) if self.launch.agent_url else None
        status = self._wait_for_agent(token)
        if status is None or self.shutdown.is_set() or self._stopping:
            return "stopped"
        if status.state in {"empty", "uploaded"}:  # a new machine, or one lost hold of before its run started
            assert self.remote is not None
            with tempfile.TemporaryDirectory(prefix="studio-cloud-") as tmp:
                bundle = self._bundle(Path(tmp))
                self._say("Sending the run to the rented machine.")
                self.remote.upload(bundle)
            self.remote.start()
        return None

    def _wait_for_agent(self, token: str) -> AgentStatus | None:
        """The agent's status once it answers; None when a stop or shutdown came first. The agent's address is
        read from the machine as soon as the provider reports it."""
        launch = self.launch
        assert launch.pod_id is not None
        limit = launch.agent_timeout_s or AGENT_START_TIMEOUT_S
        deadline = time.monotonic() + limit
        while True:
            if self.remote is None:
                machine = self.pods.get(self.key, launch.pod_id)
                if machine.state in {"exited", "gone"}:
                    raise _MachineLostError()
                url = self.pods.agent_url(machine)
                if url:
                    launch.agent_url = url
                    save_launch(self.run_dir, launch)
                    self.remote = RemoteRun(url, token)
            if self.remote is not None:
                try:
                    return self.remote.status()
                except StudioError as error:
                    if error.code != "remote_unreachable":
                        raise
                if self.pods.get(self.key, launch.pod_id).state in {"exited", "gone"}:
                    raise _MachineLostError()
            if self.shutdown.is_set():
                return None
            self._drain_commands(before_start=True)
            if self._stopping:
                return None
            if time.monotonic() > deadline:
                raise StudioError(
                    what=f"The rented machine did not start Studio's run agent within {limit / 60:.0f} minutes.",
                    why="It may still be pulling its image or installing its libraries, or the start command "
                        "failed. The machine has been terminated, so it no longer bills.",
                    actions=["Try again: another machine of the same type usually starts faster.",
                             "Check the machine's logs in the provider's console if it keeps happening."],
                    code="cloud_agent_timeout",
                )
            self._report_cost()
            time.sleep(1.0)

    def _bundle(self, into: Path) -> Path:
        """The handoff bundle, with the last good synced checkpoint in its run folder so the worker resumes."""
        folder = export_bundle(self.run_dir, into / "studio-run")
        good = latest_good(self.run_dir)
        if good is not None:
            shutil.copytree(good.path, checkpoints_dir(folder / "run" / self.run_id) / good.path.name)
        return folder

    def _resume_elsewhere(self) -> str | None:
        """The machine was taken back: say so; the caller rents the next one (unless a stop came first)."""
        if self.shutdown.is_set() or self._stopping:
            return "stopped"
        good = latest_good(self.run_dir)
        where = f"from the checkpoint at step {good.step}" if good else "from the start (no checkpoint was synced)"
        self.emitter.emit(Recovery, action="cloud_new_machine", step=good.step if good else 0,
                          message=f"The rented machine was taken back. Studio is renting a new one and resumes "
                                  f"{where}, within the budget.",
                          before={"pod_id": self.launch.pods[-1] if self.launch.pods else None},
                          after={"resume_step": good.step if good else 0})
        return None

    def _retire_pod(self) -> None:
        """The current pod is gone or lost: count what it cost, and terminate it if it is still listed."""
        launch = self.launch
        if launch.pod_id:
            launch.spent_usd = launch.cost_so_far(time.time())
            with contextlib.suppress(StudioError):
                self.pods.terminate(self.key, launch.pod_id)
        launch.pod_id, launch.agent_url, launch.pod_started_at, launch.state = None, None, None, "ended"
        save_launch(self.run_dir, launch)
        self.remote = None

    def _end_pod(self) -> bool:
        """Terminate the pod (unless keep_running); False when it could not be, said in words."""
        launch = self.launch
        if not launch.pod_id and launch.state == "renting" and self.key:
            self._end_unsaved_machine()
        if not launch.pod_id or not self.key:
            return True
        if launch.keep_running:
            self._say(f"The rented machine {launch.pod_id} is left running, as asked: it bills until you "
                      "terminate it in the provider's console.")
            return True
        for attempt in range(3):
            try:
                self.pods.terminate(self.key, launch.pod_id)
                break
            except StudioError as error:
                if attempt == 2:
                    self._error(StudioError(
                        what=f"Studio could not terminate the rented machine {launch.pod_id}.",
                        why=error.why or error.what,
                        actions=[f"Terminate it in {provider_name(launch.provider)}'s console now: it bills until "
                                 "then.", f"Or run `studio cloud stop {self.run_id}` when the provider answers."],
                        code="cloud_terminate_failed"))
                    return False
                time.sleep(2.0)
        launch.spent_usd = launch.cost_so_far(time.time())
        launch.pod_id, launch.agent_url, launch.pod_started_at, launch.state = None, None, None, "ended"
        save_launch(self.run_dir, launch)
        self._report_cost(force=True)
        return True

    def _end_unsaved_machine(self) -> None:
        """The create call failed or never answered: a machine it made anyway is found by its name and
        terminated. When the provider cannot be asked, cloud.json stays "renting" so that a runner started
        again, or `studio cloud stop`, looks for it."""
        launch = self.launch
        try:
            for machine in self.pods.find(self.key, machine_name(self.run_id)):
                self.pods.terminate(self.key, machine.id)
                launch.pods.append(machine.id)
                since = launch.renting_since or time.time()
                launch.spent_usd += max(time.time() - since, 0.0) * launch.price_per_hour / 3600.0
        except StudioError:
            return
        launch.state = "ended"
        save_launch(self.run_dir, launch)

    # ---- following the remote run ------------------------------------------------------------------

    def _follow(self) -> str:
        launch = self.launch
        failures = 0
        while True:
            remote = self.remote
            assert remote is not None and launch.pod_id is not None
            self._drain_commands()
            if self.shutdown.is_set() and not self._stopping:
                self._send_stop("shutdown")
            self._report_cost()
            if not self._stopping and launch.cost_so_far(time.time()) >= launch.budget_usd:
                self._budget_reached()
            if self._stopping and time.monotonic() > self._stop_deadline:
                return "budget" if self._stopping == "budget" else "stopped"
            try:
                batch = remote.events(launch.event_offset, wait_s=POLL_WAIT_S)
            except StudioError as error:
                if error.code not in {"remote_machine_gone", "remote_unreachable"}:
                    raise
                failures += 1
                if self._stopping == "shutdown":
                    return "stopped"
                if self.pods.get(self.key, launch.pod_id).state in {"exited", "gone"} or failures >= LOST_AFTER:
                    raise _MachineLostError() from None
                time.sleep(min(2.0**failures, 10.0))
                continue
            failures = 0
            for event in batch.events:
                self._pass_on(event)
            if batch.next_offset != launch.event_offset:
                launch.event_offset = batch.next_offset
                save_launch(self.run_dir, launch)
            if batch.state in {"completed", "stopped", "paused", "failed", "interrupted"} \
                    and batch.next_offset == batch.offset:
                return self._finished(batch.state)

    def _pass_on(self, event: Event) -> None:
        """A remote event, re-stamped as this run's own (local seq), with local paths once synced."""
        launch = self.launch
        if event.seq and event.seq <= launch.remote_seq:
            return  # already passed on before a reattach
        launch.remote_seq = event.seq
        if isinstance(event, Completed):
            self._completed = event  # passed on once the result is imported
            return
        if event.kind in {"checkpoint", "stopped", "paused"}:
            self._sync()
        if isinstance(event, Checkpoint):
            local = checkpoints_dir(self.run_dir) / f"{PREFIX}{event.step:08d}"
            event = replace(event, path=str(local)) if local.is_dir() else event
        if isinstance(event, Stopped):
            if not self._stopping:  # the machine shut the run down itself: it is being taken back
                self._say("The rented machine is shutting down; its last checkpoint was kept.")
                return
            good = latest_good(self.run_dir)
            event = replace(event, reason="budget" if self._stopping == "budget" else event.reason,
                            checkpoint_path=str(good.path) if good else None)
        # Marked with its pod and remote seq, so a runner killed right after this reattaches past it.
        self.emitter.forward(replace(event, extra={**event.extra, "cloud_pod": launch.pod_id,
                                                   "cloud_seq": event.seq}))
        save_launch(self.run_dir, launch)

    def _finished(self, state: str) -> str:
        assert self.remote is not None
        if state == "stopped" and not self._stopping:
            raise _MachineLostError()  # stopped by the machine's own shutdown (a spot machine taken back)
        self._sync()
        if state == "completed":
            self._say("Bringing the trained adapter back into the library.")
            with tempfile.TemporaryDirectory(prefix="studio-cloud-result-") as tmp:
                imported = self.remote.import_result(Path(tmp))
            self.launch.imported_run_id = imported.run_id
            save_launch(self.run_dir, self.launch)
            record = Registry().get(imported.run_id)
            done = self._completed or self._remote_completed()
            adapter = str(final_adapter_dir(record.run_dir)) if record else ""
            summary = (done.summary if done else "") + f" In the library as run {imported.run_id}."
            self._end_pod()  # before `completed`: nothing is seen as done while the machine still bills
            self.emitter.emit(Completed, step=done.step if done else 0, adapter_path=adapter,
                              metrics=dict(done.metrics) if done else {}, summary=summary.strip())
            return "completed"
        if state == "stopped":
            return "budget" if self._stopping == "budget" else "stopped"
        return {"paused": "paused", "failed": "failed"}.get(state, "interrupted")

    def _remote_completed(self) -> Completed | None:
        """The remote `completed` event, read again: a runner killed after reading it reattaches past it."""
        assert self.remote is not None
        offset, found = 0, None
        with contextlib.suppress(StudioError):
            while True:
                batch = self.remote.events(offset)
                found = next((e for e in reversed(batch.events) if isinstance(e, Completed)), found)
                if batch.next_offset == offset:
                    return found
                offset = batch.next_offset
        return found

    def _sync(self) -> None:
        if self.remote is None:
            return
        with contextlib.suppress(StudioError):  # a machine going away: what was synced stays, the rest next time
            self.remote.sync_checkpoints(self.run_dir)

    # ---- control, budget and cost ------------------------------------------------------------------

    def _drain_commands(self, before_start: bool = False) -> None:
        while True:
            received = self.channel.get()
            if received is None:
                return
            command = received.command
            if command not in {"pause", "pause_release", "resume", "stop"}:
                continue
            if command == "stop":
                if before_start:
                    self._stopping = "user"
                else:
                    self._send_stop("user")
            elif self.remote is not None and not before_start:
                try:
                    self.remote.control(command)
                except StudioError as error:
                    self._say(f"'{command}' was not sent: {error.what}")

    def _send_stop(self, why: str) -> None:
        self._stopping = why
        self._stop_deadline = time.monotonic() + STOP_WAIT_S
        if self.remote is not None:
            with contextlib.suppress(StudioError):
                self.remote.control("stop")

    def _budget_reached(self, before_start: bool = False) -> str:
        launch = self.launch
        self.emitter.emit(Anomaly, anomaly="cloud_budget_reached", severity="warning",
                          message=f"The budget of ${launch.budget_usd:.2f} is reached "
                                  f"(${launch.cost_so_far(time.time()):.2f} so far): Studio stops the run, keeps its "
                                  "checkpoint and returns the rented machine.",
                          actions=["Continue with a higher budget: `studio cloud train --budget USD RUN`."],
                          evidence={"cost_usd": round(launch.cost_so_far(time.time()), 4),
                                    "budget_usd": launch.budget_usd})
        if before_start:
            good = latest_good(self.run_dir)
            self.emitter.emit(Stopped, step=good.step if good else 0, reason="budget",
                              checkpoint_path=str(good.path) if good else None)
            return "budget"
        self._send_stop("budget")
        return "budget"

    def _report_cost(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_cost < COST_EVERY_S:
            return
        self._last_cost = now
        cost = self.launch.cost_so_far(time.time())
        self.emitter.emit(Heartbeat, phase="cloud_cost",
                          message=f"${cost:.2f} of ${self.launch.budget_usd:.2f} spent on the rented GPU",
                          fraction=min(cost / self.launch.budget_usd, 1.0),
                          extra={"cost_usd": round(cost, 6), "budget_usd": self.launch.budget_usd,
                                 "price_per_hour": self.launch.price_per_hour})

    def _say(self, message: str) -> None:
        self.emitter.emit(Heartbeat, phase="cloud", message=message)

    def _error(self, error: StudioError) -> None:
        self.emitter.emit(Error, code=error.code, message=error.what, hint=error.why, actions=list(error.actions),
                          exit_code=1)



def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m studio.engine.cloud.runner RUN_DIR\n")
        return 2
    run_dir = Path(args[0]).resolve()
    run_id = run_dir.name
    emitter = EventEmitter(run_id, [FileSink(events_file(run_dir)), StreamSink()],
                           start_seq=last_seq(events_file(run_dir)))
    try:
        # An end of stdin (the app closed) is not a stop: the run goes on, and a new app reattaches.
        runner = CloudRunner(run_dir, emitter, ControlChannel(run_dir, sys.stdin))
    except StudioError as error:
        emitter.emit(Error, code=error.code, message=error.what, hint=error.why, actions=list(error.actions))
        emitter.close()
        return 1

    def on_signal(_signum: int, _frame: FrameType | None) -> None:  # Studio closing: stop, sync, terminate
        runner.shutdown.set()

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, on_signal)
    try:
        return runner.run()
    finally:
        runner.channel.close()
        emitter.close()


if __name__ == "__main__":
    sys.exit(main())
