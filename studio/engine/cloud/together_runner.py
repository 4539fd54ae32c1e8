"""The Together AI runner: trains one run as a Together fine-tuning job and speaks the local worker's protocol,
so the dashboard and the CLI supervise it exactly like a local run or a rented machine.

    python -m studio.engine.cloud.together_runner RUN_DIR

It reads RUN_DIR/together.json (written by together_api.prepare_together: the Together model, the budget, the
uploaded file and Together's estimate), starts the LoRA job (uploading the data first if that was not done),
then follows it: JSON event lines on stdout and appended to RUN_DIR/events.jsonl, the same Event types as the
worker. `started` when Together starts training (with its total steps once it says them), `progress` for each
step Together reports, heartbeats with the job's status and each of Together's event messages, the running
cost as a heartbeat with phase "cloud_cost" and `cost_usd`/`budget_usd` fields, and `completed`, `stopped`
or `error` at the end. A `stop` (stdin or RUN_DIR/control, as for a worker) cancels the job, and so does a
running cost past the budget. On completion the adapter is downloaded and imported into the library as a new
version, through the same import as a handoff result. Started again on a folder whose job is still going
(the runner was killed), it reattaches to that job.

Exit codes are the worker's: 0 completed, 130 stopped (by the user or at the budget), 1 failed.
"""

from __future__ import annotations

import contextlib
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType

from studio.engine.cloud.cloud_state import cloud_file, load_launch, save_launch
from studio.engine.cloud.keys import load_api_key
from studio.engine.cloud.together_api import (
    ENDED,
    PROVIDER,
    Job,
    JobEvent,
    TogetherJobs,
    budget_refused,
    job_settings,
    write_training_file,
)
from studio.engine.cloud.together_state import TogetherLaunch, load_together, save_together
from studio.engine.errors import ExitCode, StudioError
from studio.engine.events import Anomaly, Completed, Error, Heartbeat, Progress, Started, Stopped
from studio.engine.handoff import import_results
from studio.engine.runs.folders import CONFIG_FILE, events_file, final_adapter_dir, load_run_config
from studio.engine.runs.registry import Registry, Status
from studio.engine.training.control_channel import ControlChannel
from studio.engine.training.sinks import EventEmitter, FileSink, StreamSink, highest_mark, last_seq

POLL_S = 2.0  # between two looks at the job (its status and events)
COST_EVERY_S = 5.0
CANCEL_WAIT_S = 300.0  # a cancel waits this long for Together to say the job is cancelled
LOST_AFTER = 6  # failed looks in a row: Together is treated as unreachable

OUTCOME_EXIT = {"completed": 0, "stopped": int(ExitCode.STOPPED), "budget": int(ExitCode.STOPPED),
                "failed": 1, "interrupted": 1}
OUTCOME_STATUS: dict[str, Status] = {"completed": "completed", "stopped": "stopped", "budget": "stopped",
                                     "failed": "failed", "interrupted": "interrupted"}
SHOWN_STATUS = {"pending": "waiting to be scheduled", "queued": "queued", "running": "training",
                "compressing": "packing the trained model", "uploading": "saving the trained model",
                "cancel_requested": "being cancelled", "cancelled": "cancelled", "error": "failed",
                "completed": "completed"}


class TogetherRunner:
    def __init__(self, run_dir: Path, emitter: EventEmitter, channel: ControlChannel | None = None,
                 jobs: TogetherJobs | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.run_id = self.run_dir.name
        self.emitter = emitter
        self.state: TogetherLaunch = load_together(self.run_dir)
        self.jobs = jobs or TogetherJobs()
        self.channel = channel or ControlChannel(self.run_dir)
        self.shutdown = threading.Event()
        self.key = ""
        self._stopping: str | None = None  # why the job is being cancelled: "user" or "budget"
        self._cancel_deadline = 0.0
        self._last_cost = 0.0
        self._started = False
        self._completed: Completed | None = None

    # ---- the whole run -----------------------------------------------------------------------------

    def run(self) -> int:
        registry = Registry()
        registry.mark_running(self.run_id)
        outcome = "failed"
        try:
            self.key = load_api_key(PROVIDER)
            outcome = self._train()
        except StudioError as error:
            self._error(error)
        except Exception as exc:  # a bug: said in words; the job, if any, is named so it can be cancelled
            job = f" (job {self.state.job_id})" if self.state.job_id else ""
            self._error(StudioError(what="The Together AI run failed unexpectedly.", why=f"{type(exc).__name__}: {exc}",
                                    actions=[f"Check your Together AI jobs page{job}: cancel it there if it still "
                                             "runs.", "Report it with the run's events.jsonl attached."],
                                    code="cloud_together_runner_failed"))
        self.state.outcome = outcome
        self._save()
        metrics = dict(self._completed.metrics) if self._completed else None
        registry.mark_finished(self.run_id, OUTCOME_STATUS[outcome], OUTCOME_EXIT[outcome], metrics=metrics)
        if self.state.imported_run_id:
            registry.add_note(self.run_id, f"Trained by Together AI (job {self.state.job_id}); the result is in "
                              f"the library as run {self.state.imported_run_id}.")
        return OUTCOME_EXIT[outcome]

    def _train(self) -> str:
        state = self.state
        if state.job_id and state.outcome in {None, "interrupted"}:
            state.seen_events = max(state.seen_events, highest_mark(events_file(self.run_dir), "together_job",
                                                                     state.job_id, "together_event"))
            self._say(f"Reattached to the Together AI job {state.job_id}; reading on from where Studio left off.")
        else:
            if state.outcome == "completed" and state.imported_run_id:
                raise StudioError(what="This run has already been trained by Together AI.",
                                  actions=["Train a new version: `studio cloud train --provider together` with "
                                           "the same options."],
                                  code="cloud_run_finished")
            outcome = self._start_job()
            if outcome:
                return outcome
        return self._follow()

    def _start_job(self) -> str | None:
        state = self.state
        config = load_run_config(self.run_dir)
        limits = self.jobs.limits(self.key, state.model)
        settings = job_settings(config, limits)
        if not state.file_id or state.outcome is not None:  # a new job after an earlier one: the data anew
            with tempfile.TemporaryDirectory(prefix="studio-together-") as tmp:
                data = Path(tmp) / f"studio-{self.run_id}.jsonl"
                state.examples = write_training_file(config, data)
                self._say("Sending the training data to Together AI.")
                state.file_id = self.jobs.upload(self.key, data)
            state.estimate_usd = self.jobs.estimate(self.key, state.file_id, state.model, int(settings["n_epochs"]))
        if state.estimate_usd is not None and state.estimate_usd > state.budget_usd:
            raise budget_refused(state.estimate_usd, state.budget_usd)
        self._drain_commands()
        if self._stopping or self.shutdown.is_set():
            self.emitter.emit(Stopped, step=0, reason="user")
            return "stopped"
        if config.max_steps:
            self._say(f"Together AI trains whole epochs: the run's limit of {config.max_steps} steps does not "
                      f"apply there ({settings['n_epochs']} epoch(s) instead).")
        estimate = f", estimated ${state.estimate_usd:.2f}" if state.estimate_usd is not None else ""
        self._say(f"Starting a LoRA fine-tuning job on Together AI for {state.model} "
                  f"(budget ${state.budget_usd:.2f}{estimate}).")
        state.job_id = self.jobs.create(self.key, state.file_id, state.model, settings)
        state.status, state.seen_events, state.step, state.total_steps = "pending", 0, 0, 0
        state.cost_usd, state.outcome, state.imported_run_id = 0.0, None, None
        self._save()
        return None

    # ---- following the job -------------------------------------------------------------------------

    def _follow(self) -> str:
        state = self.state
        assert state.job_id is not None
        failures = 0
        while True:
            self._drain_commands()
            if self.shutdown.is_set():
                self._say(f"Studio stopped following the Together AI job {state.job_id}; it goes on there. "
                          "Start the run again to reattach to it.")
                return "interrupted"
            if self._stopping and time.monotonic() > self._cancel_deadline:
                raise StudioError(what=f"Together AI has not confirmed that job {state.job_id} is cancelled.",
                                  why=f"Studio asked it to cancel {CANCEL_WAIT_S / 60:.0f} minutes ago.",
                                  actions=["Check your Together AI jobs page and cancel the job there.",
                                           f"Or run `studio cloud stop {self.run_id}` again."],
                                  code="cloud_together_cancel_slow")
            try:
                job = self.jobs.get(self.key, state.job_id)
            except StudioError as error:
                if error.code != "cloud_offline":
                    raise
                failures += 1
                if failures >= LOST_AFTER:
                    raise
                time.sleep(min(2.0**failures, 15.0))
                continue
            failures = 0
            self._observe(job)
            if job.status in ENDED:
                return self._finished(job)
            if not self._stopping and state.cost_usd > state.budget_usd:
                self._budget_reached()
            self._sleep(POLL_S)

    def _observe(self, job: Job) -> None:
        state = self.state
        if job.status != state.status:
            state.status = job.status
            self._say(f"Together AI job {job.id}: {SHOWN_STATUS.get(job.status, job.status)}.")
        if job.status in {"running", "compressing", "uploading", "completed"} and not self._started:
            self._start_event(job)
        for number, event in enumerate(job.events[state.seen_events:], start=state.seen_events + 1):
            self._pass_on(event, number)
            state.seen_events = number
            self._save()
        state.cost_usd = self._cost(job)
        self._save()
        self._report_cost()

    def _start_event(self, job: Job) -> None:
        total = next((e.total_steps for e in job.events if e.total_steps), None) or self.state.total_steps
        self.state.total_steps = int(total or 0)
        self._started = True
        config = load_run_config(self.run_dir)
        self.emitter.emit(Started, config=config.model_dump(mode="json"), backend="together",
                          device="Together AI", model=self.state.model, train_examples=self.state.examples,
                          total_steps=self.state.total_steps,
                          resumed_from_step=self.state.step or None)

    def _pass_on(self, event: JobEvent, number: int) -> None:
        """One of Together's events (the `number`th of the job), marked with it so that a runner killed
        right after passing it on reattaches past it."""
        state = self.state
        if event.total_steps:
            state.total_steps = int(event.total_steps)
        if event.step is not None and event.step > state.step:
            if not self._started:
                self._start_event(Job(state.job_id or "", state.status or "running"))
            state.step = int(event.step)
            self.emitter.emit(Progress, step=state.step, total_steps=max(state.total_steps, state.step),
                              epoch=0.0)
        if event.type in {"billing_limit", "warning"} or event.level in {"warning", "legacy_iwarning"}:
            self.emitter.emit(Anomaly, anomaly="cloud_together_warning", severity="warning",
                              message=f"Together AI: {event.message}", step=state.step)
        status = SHOWN_STATUS.get(state.status or "", state.status or "")  # last: it marks the event as passed on
        self.emitter.emit(Heartbeat, phase="cloud", message=f"Together AI ({status}): {event.message}",
                          extra={"together_job": state.job_id, "together_event": number})

    def _cost(self, job: Job) -> float:
        """What the job costs so far: Together's own total once it gives one, else its estimate times the
        share of steps done (Together bills by tokens processed)."""
        if job.total_price is not None and job.total_price > 0:
            return float(job.total_price)
        estimate = self.state.estimate_usd or 0.0
        if job.status == "completed":
            return estimate
        if self.state.total_steps:
            return estimate * min(self.state.step / self.state.total_steps, 1.0)
        return 0.0

    def _finished(self, job: Job) -> str:
        self._report_cost(force=True)
        if job.status == "completed":
            return self._import()
        if job.status == "cancelled":
            reason = "budget" if self._stopping == "budget" else "user"
            if not self._stopping:
                self._say(f"The Together AI job {job.id} was cancelled outside Studio.")
            self.emitter.emit(Stopped, step=self.state.step, reason=reason, checkpoint_path=None)
            return "budget" if reason == "budget" else "stopped"
        said = next((e.message for e in reversed(job.events) if e.type == "job_error" or e.level == "error"), "")
        raise StudioError(
            what=f"Together AI could not finish the fine-tuning job {job.id}.",
            why=said or "The job ended with an error and Together gave no reason.",
            actions=["Read the job's events on your Together AI jobs page, fix what they name and start again.",
                     "Or train this run on a rented GPU: `studio cloud train --provider runpod RUN`."],
            code="cloud_together_job_failed",
        )

    def _import(self) -> str:
        """The adapter downloaded, and brought into the library as a new version of this run by the same
        import as a handoff result (a run folder with its settings, its record and final/adapter)."""
        state = self.state
        assert state.job_id is not None
        self._say("Bringing the trained adapter back from Together AI into the library.")
        with tempfile.TemporaryDirectory(prefix="studio-together-result-") as tmp:
            adapter = self.jobs.download_adapter(self.key, state.job_id, Path(tmp))
            folder = Path(tmp) / "result" / self.run_id
            (folder / "final").mkdir(parents=True)
            shutil.copytree(adapter, final_adapter_dir(folder))
            shutil.copyfile(self.run_dir / CONFIG_FILE, folder / CONFIG_FILE)
            record = events_file(self.run_dir)
            shutil.copyfile(record, events_file(folder)) if record.is_file() else events_file(folder).touch()
            done = Completed(run_id=self.run_id, step=state.step, metrics={"together_job": state.job_id},
                             summary=f"Trained by Together AI (job {state.job_id}).")
            with events_file(folder).open("a", encoding="utf-8") as lines:
                lines.write(done.to_json() + "\n")
            imported = import_results(folder)
        state.imported_run_id = imported.run_id
        self._save()
        target = Registry().get(imported.run_id)
        adapter_path = str(final_adapter_dir(target.run_dir)) if target else ""
        self._completed = self.emitter.emit(  # type: ignore[assignment]
            Completed, step=state.step, adapter_path=adapter_path, metrics={"cost_usd": round(state.cost_usd, 4)},
            summary=f"Trained by Together AI (job {state.job_id}) for ${state.cost_usd:.2f}. In the library as run "
                    f"{imported.run_id}.")
        return "completed"

    # ---- control, budget and cost ------------------------------------------------------------------

    def _drain_commands(self) -> None:
        while True:
            received = self.channel.get()
            if received is None:
                return
            if received.command == "stop":
                self._cancel("user")
            elif received.command in {"pause", "pause_release"}:
                self._say("A Together AI job cannot be paused: stop it instead (it is cancelled, and billed for "
                          "the steps done).")

    def _cancel(self, why: str) -> None:
        if self._stopping:
            return
        self._stopping = why
        self._cancel_deadline = time.monotonic() + CANCEL_WAIT_S
        if self.state.job_id and self.state.status not in ENDED:
            self._say(f"Cancelling the Together AI job {self.state.job_id}.")
            self.jobs.cancel(self.key, self.state.job_id)

    def _budget_reached(self) -> None:
        state = self.state
        self.emitter.emit(Anomaly, anomaly="cloud_budget_reached", severity="warning",
                          message=f"The budget of ${state.budget_usd:.2f} is reached (${state.cost_usd:.2f} so far): "
                                  "Studio cancels the Together AI job.",
                          actions=["Start again with a higher budget: `studio cloud train --provider together "
                                   "--budget USD RUN`."],
                          evidence={"cost_usd": round(state.cost_usd, 4), "budget_usd": state.budget_usd})
        self._cancel("budget")

    def _report_cost(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_cost < COST_EVERY_S:
            return
        self._last_cost = now
        state = self.state
        self.emitter.emit(Heartbeat, phase="cloud_cost",
                          message=f"${state.cost_usd:.2f} of ${state.budget_usd:.2f} spent on Together AI",
                          fraction=min(state.cost_usd / state.budget_usd, 1.0) if state.budget_usd else None,
                          extra={"cost_usd": round(state.cost_usd, 6), "budget_usd": state.budget_usd,
                                 "estimate_usd": state.estimate_usd, "together_job": state.job_id,
                                 "together_status": state.status})

    def _save(self) -> None:
        """together.json, and cloud.json's cost, state and outcome (what `studio cloud status` and `stop` read)."""
        save_together(self.run_dir, self.state)
        if cloud_file(self.run_dir).is_file():
            with contextlib.suppress(StudioError, OSError):
                launch = load_launch(self.run_dir)
                launch.spent_usd = round(self.state.cost_usd, 6)
                launch.state = "ended" if self.state.outcome else ("running" if self.state.job_id else "new")
                launch.outcome, launch.imported_run_id = self.state.outcome, self.state.imported_run_id
                save_launch(self.run_dir, launch)

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.shutdown.is_set():
            received = self.channel.get(timeout=min(0.5, max(deadline - time.monotonic(), 0.01)))
            if received is not None:
                self.channel.put(received)  # handled by _drain_commands, in order
                return

    def _say(self, message: str, phase: str = "cloud") -> None:
        self.emitter.emit(Heartbeat, phase=phase, message=message)

    def _error(self, error: StudioError) -> None:
        self.emitter.emit(Error, code=error.code, message=error.what, hint=error.why, actions=list(error.actions),
                          exit_code=1)



def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        sys.stderr.write("usage: python -m studio.engine.cloud.together_runner RUN_DIR\n")
        return 2
    run_dir = Path(args[0]).resolve()
    emitter = EventEmitter(run_dir.name, [FileSink(events_file(run_dir)), StreamSink()],
                           start_seq=last_seq(events_file(run_dir)))
    try:
        # An end of stdin (the app closed) is not a stop: the job goes on, and a new app reattaches.
        runner = TogetherRunner(run_dir, emitter, ControlChannel(run_dir, sys.stdin))
    except StudioError as error:
        emitter.emit(Error, code=error.code, message=error.what, hint=error.why, actions=list(error.actions))
        emitter.close()
        return 1

    def on_signal(_signum: int, _frame: FrameType | None) -> None:  # Studio closing: the job goes on there
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
