"""Together AI fine-tuning end to end, against a fake Together (tests/engine/cloud/fake_together.py) whose jobs
run Studio's real worker on the uploaded data: the official SDK's requests, the JSONL Studio writes, the runner
supervised as a local worker is (events on stdout and in events.jsonl, control on stdin) and the adapter
imported into the library. Nothing here reaches the network."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from studio.engine.cloud import save_api_key
from studio.engine.cloud.cloud_state import load_launch
from studio.engine.cloud.providers import unreachable
from studio.engine.cloud.together_api import (
    BASE_URL_ENV,
    TogetherJobs,
    check_key,
    prepare_together,
    together_model,
    write_training_file,
)
from studio.engine.cloud.together_state import has_together, load_together
from studio.engine.errors import StudioError
from studio.engine.events import Event
from studio.engine.runs.folders import events_file, final_adapter_dir, load_run_config
from studio.engine.runs.registry import Registry
from studio.engine.training.supervisor import Supervisor, WorkerOutcome
from tests.cloud_server import closed_port_url
from tests.engine.cloud.fake_together import GOOD_KEY, MODEL, FakeTogether, fake_together, job_events
from tests.engine.cloud.test_agent import _queued_run

RUNNER = [sys.executable, "-m", "studio.engine.cloud.together_runner"]


@pytest.fixture
def together(monkeypatch, tmp_path, tiny_model_dir) -> FakeTogether:
    with fake_together(monkeypatch, tmp_path, tiny_model_dir) as api:
        save_api_key("together", GOOD_KEY)
        yield api


class Runner:
    """The Together runner under a Supervisor, as the dashboard and `train_on_together` run it."""

    def __init__(self, run_dir: Path, on_event: Callable[[Event], None] | None = None) -> None:
        self.events: list[Event] = []

        def seen(event: Event) -> None:
            self.events.append(event)
            if on_event is not None:
                on_event(event)

        self.supervisor = Supervisor(run_dir, on_event=seen, command=[*RUNNER, str(run_dir)])
        self.supervisor.start()

    def wait(self, timeout: float = 240) -> WorkerOutcome:
        return self.supervisor.wait(timeout)

    def said(self) -> list[str]:
        return [str(getattr(event, "message", "")) for event in self.events if event.kind == "heartbeat"]


@pytest.fixture
def slow_steps_env(monkeypatch) -> None:
    """Each of the worker's steps sleeps a little, so a job is still training when the test acts."""
    monkeypatch.setenv("STUDIO_TEST_FAULTS", "sleep_per_step=0.2")


def _running(run_dir: Path) -> Runner:
    """A runner whose job Together says is training."""
    training = threading.Event()
    runner = Runner(run_dir, on_event=lambda e: str(getattr(e, "message", "")).endswith("Training started") and
                    training.set())
    assert training.wait(180), [event.to_dict() for event in runner.events]
    return runner


def _together_run(tiny_model_dir: Path, budget: float | None = 5.0, **settings: object) -> Path:
    run_dir = _queued_run(tiny_model_dir, **settings)
    prepare_together(run_dir, GOOD_KEY, budget, model=MODEL)
    return run_dir


def test_check_key_and_the_model_names(together):
    assert check_key(GOOD_KEY) == 0
    assert together_model("Qwen/Qwen2.5-7B-Instruct") == "Qwen/Qwen2.5-7B-Instruct"
    assert together_model("meta-llama/llama-3.1-8b-instruct") == MODEL
    with pytest.raises(StudioError) as refused:
        together_model("builtin:smollm2-135m-instruct")
    assert refused.value.code == "cloud_together_model_unsupported"
    assert "the built-in model" in refused.value.what and len(refused.value.actions) >= 2


def test_the_run_is_sent_as_together_jsonl_with_its_settings(together, tiny_model_dir, tmp_path):
    run_dir = _together_run(tiny_model_dir, budget=None, num_epochs=2, lora_r=8, lora_alpha=16)
    launch = load_together(run_dir)
    assert (launch.model, launch.estimate_usd, launch.budget_usd) == (MODEL, 0.42, 0.63)  # 1.5x the estimate
    sent = together.files[launch.file_id].read_text(encoding="utf-8").splitlines()
    assert len(sent) == launch.examples > 0
    rows = [json.loads(line) for line in sent]
    assert all(set(row) == {"messages"} and row["messages"][-1]["role"] == "assistant" for row in rows)
    ours = tmp_path / "ours.jsonl"
    assert write_training_file(load_run_config(run_dir), ours) == len(rows)  # Studio's own reading of the data
    cloud = load_launch(run_dir)  # what marks it as a run that trains elsewhere, for the dashboard
    assert (cloud.provider, cloud.budget_usd, cloud.pod_id) == ("together", 0.63, None)
    assert ("POST", "/v1/fine-tunes") not in together.requests  # nothing is started before the runner


@pytest.mark.slow
def test_a_together_job_trains_and_its_adapter_lands_in_the_library(together, tiny_model_dir, capsys):
    from studio.cli.together import train_on_together

    run_dir = _queued_run(tiny_model_dir, num_epochs=1, lora_r=4, lora_alpha=8)
    assert train_on_together(run_dir, 5.0, model=MODEL) == 0
    state = load_together(run_dir)
    assert state.outcome == "completed" and state.job_id in together.created and len(together.created) == 1
    request = together.jobs[state.job_id].request
    assert request["training_type"]["lora_r"] == 4 and request["training_type"]["lora_alpha"] == 8
    assert request["n_epochs"] == 1 and request["batch_size"] == 2 and request["max_seq_length"] == 64
    assert "training_complete" in job_events(together, state.job_id)

    record = Registry().get(state.imported_run_id or "")
    assert record is not None and record.status == "completed" and record.parent_id == run_dir.name
    assert (final_adapter_dir(record.run_dir) / "adapter_model.safetensors").is_file()
    assert Registry().get(run_dir.name).status == "completed"  # type: ignore[union-attr]
    kinds = [json.loads(line)["event"] for line in events_file(run_dir).read_text().splitlines()]
    assert kinds.count("started") == 1 and "progress" in kinds and kinds[-1] == "completed"
    costs = [json.loads(line) for line in events_file(run_dir).read_text().splitlines()
             if '"cloud_cost"' in line]
    assert costs and costs[-1]["cost_usd"] == pytest.approx(0.42) and costs[-1]["budget_usd"] == 5.0
    assert load_launch(run_dir).imported_run_id == record.id  # `studio cloud status` sees the ending too
    assert "Done." in capsys.readouterr().out


@pytest.mark.slow
def test_stop_cancels_the_job(together, tiny_model_dir, slow_steps_env):
    run_dir = _together_run(tiny_model_dir, max_steps=None, num_epochs=50)
    together.max_steps = 400  # long enough that the stop comes mid-training
    runner = _running(run_dir)
    assert runner.supervisor.stop()
    outcome = runner.wait()
    state = load_together(run_dir)
    assert outcome.exit_code == 130 and state.outcome == "stopped"
    assert together.cancelled == [state.job_id] and together.jobs[state.job_id].status == "cancelled"
    assert any(event.kind == "stopped" for event in runner.events)
    assert Registry().get(run_dir.name).status == "stopped"  # type: ignore[union-attr]


@pytest.mark.slow
def test_a_running_cost_past_the_budget_cancels_the_job(together, tiny_model_dir, slow_steps_env):
    run_dir = _together_run(tiny_model_dir, budget=5.0, max_steps=None, num_epochs=50)
    together.max_steps, together.price_while_training = 400, 9  # Together's total_price passes the budget
    runner = Runner(run_dir)
    outcome = runner.wait()
    state = load_together(run_dir)
    assert outcome.exit_code == 130 and state.outcome == "budget", [e.to_dict() for e in runner.events]
    assert together.cancelled == [state.job_id] and together.jobs[state.job_id].status == "cancelled"
    reached = [event for event in runner.events if event.kind == "anomaly"]
    assert reached and reached[0].anomaly == "cloud_budget_reached" and "$5.00" in reached[0].message
    stopped = [event for event in runner.events if event.kind == "stopped"]
    assert stopped and stopped[-1].reason == "budget"
    assert load_launch(run_dir).outcome == "budget"


def test_a_price_above_the_budget_is_refused_before_anything_starts(together, tiny_model_dir):
    run_dir = _queued_run(tiny_model_dir)
    with pytest.raises(StudioError) as refused:
        prepare_together(run_dir, GOOD_KEY, 0.10, model=MODEL)
    assert refused.value.code == "cloud_together_over_budget"
    assert "$0.42" in refused.value.what and "$0.10" in refused.value.what
    assert together.created == [] and not has_together(run_dir)
    assert together.files == {} and len(together.deleted) == 1  # the upload for the estimate is not left there


@pytest.mark.slow
def test_a_killed_runner_started_again_reattaches_to_the_same_job(together, tiny_model_dir, slow_steps_env):
    run_dir = _together_run(tiny_model_dir)
    first = _running(run_dir)
    job_id = load_together(run_dir).job_id
    first.supervisor.kill()
    first.wait(30)
    assert load_together(run_dir).job_id == job_id and together.jobs[job_id].status != "cancelled"

    second = Runner(run_dir)
    outcome = second.wait()
    assert outcome.exit_code == 0, [event.to_dict() for event in second.events]
    assert together.created == [job_id]  # no second job
    assert any("Reattached to the Together AI job" in message for message in second.said())
    state = load_together(run_dir)
    assert state.outcome == "completed" and Registry().get(state.imported_run_id or "") is not None
    messages = [json.loads(line).get("message", "") for line in events_file(run_dir).read_text().splitlines()]
    started = [text for text in messages if text.startswith("Together AI (") and text.endswith("Training started")]
    assert len(started) == 1  # each of Together's events passed on once


def test_a_wrong_key_is_a_plain_message_and_nothing_is_created(together, tiny_model_dir):
    run_dir = _queued_run(tiny_model_dir)
    with pytest.raises(StudioError) as refused:
        prepare_together(run_dir, "wrong-key", 5.0, model=MODEL)
    assert refused.value.code == "cloud_key_refused" and refused.value.what == "Together AI refused the API key."
    with pytest.raises(StudioError):
        check_key("wrong-key")
    assert together.files == {} and together.created == [] and not has_together(run_dir)


def test_an_unreachable_together_gives_the_offline_message(monkeypatch, tmp_path, tiny_model_dir, studio_home):
    monkeypatch.setenv(BASE_URL_ENV, closed_port_url())
    run_dir = _queued_run(tiny_model_dir)
    with pytest.raises(StudioError) as offline:
        prepare_together(run_dir, GOOD_KEY, 5.0, model=MODEL)
    expected = unreachable("together", "")
    assert offline.value.code == "cloud_offline" == expected.code
    assert offline.value.what == expected.what and offline.value.actions == expected.actions
    assert not has_together(run_dir)


def test_a_model_together_does_not_fine_tune_is_refused(together, tiny_model_dir):
    builtin = _queued_run(tiny_model_dir)
    config = load_run_config(builtin).updated(base_model="builtin:smollm2-135m-instruct")
    config.save(builtin / "config.json")
    with pytest.raises(StudioError) as refused:
        prepare_together(builtin, GOOD_KEY, 5.0)
    assert refused.value.code == "cloud_together_model_unsupported"
    with pytest.raises(StudioError) as unlisted:  # a name Together's own list does not have
        TogetherJobs().limits(GOOD_KEY, "someone/not-a-together-model")
    assert unlisted.value.code == "cloud_together_model_unsupported"
    assert together.files == {} and together.created == []
