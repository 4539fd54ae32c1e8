"""The queue's bookkeeping, schedules and rules, against a real registry file (no training here)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.errors import StudioError
from studio.engine.queue import RunQueue, Schedules, timeline
from studio.engine.queue.idle import MachineLoad, idle_verdict
from studio.engine.queue.schedules import check_cron, next_due
from studio.engine.runs.active import activate, activation_history, active_run, default_run, judge
from studio.engine.runs.folders import final_adapter_dir
from studio.engine.runs.notices import unseen_notices
from studio.engine.runs.registry import Registry


def _config(tmp_path: Path, **changes: object) -> TrainConfig:
    data = tmp_path / "data.jsonl"
    if not data.exists():
        data.write_text('{"prompt": "hi", "completion": "hello"}\n' * 3)
    return TrainConfig.from_dict({"dataset_path": str(data), "max_steps": 2, **changes})


def test_entries_keep_order_move_and_survive_a_new_registry_object(tmp_path: Path):
    queue = RunQueue()
    first, second, third = (queue.add(_config(tmp_path), name, estimate_s=60.0) for name in ("a", "b", "c"))
    assert [e.name for e in queue.entries()] == ["a", "b", "c"]
    queue.move(third.id, -2)
    reopened = RunQueue(Registry())  # what a restarted app or machine sees
    assert [e.name for e in reopened.entries()] == ["c", "a", "b"]
    reopened.move(third.id, +5)  # past the end: last
    assert [e.name for e in reopened.entries()] == ["a", "b", "c"]
    assert all(Registry().get(e.run_id).status == "queued" for e in (first, second, third))


def test_removing_a_waiting_entry_deletes_its_unstarted_run(tmp_path: Path):
    queue = RunQueue()
    entry = queue.add(_config(tmp_path), "a")
    assert entry.run_dir.is_dir()
    message = queue.remove(entry.id)
    assert "Removed a 1.0.0" in message
    assert queue.entries() == []
    assert Registry().get(entry.run_id) is None
    assert not entry.run_dir.exists()
    with pytest.raises(StudioError, match="no queue entry"):
        queue.remove(entry.id)


def test_only_waiting_entries_move_and_pause_is_remembered(tmp_path: Path):
    queue = RunQueue()
    entry = queue.add(_config(tmp_path), "a")
    queue.start(entry.id)
    with pytest.raises(StudioError, match="still waiting"):
        queue.move(entry.id, 1)
    assert not queue.is_paused()
    queue.set_paused(True)
    assert RunQueue().is_paused()


def test_timeline_chains_estimates_and_respects_start_times(tmp_path: Path):
    queue = RunQueue()
    now = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    queue.add(_config(tmp_path), "a", estimate_s=600.0)
    queue.add(_config(tmp_path), "b", estimate_s=None)
    queue.add(_config(tmp_path), "c", estimate_s=300.0, not_before=now + timedelta(hours=5))
    slots = timeline(queue.entries(), now)
    assert [s.start - now for s in slots] == [timedelta(0), timedelta(minutes=10), timedelta(hours=5)]
    assert slots[0].finish - now == timedelta(minutes=10)
    assert not slots[1].estimated and slots[1].finish - slots[1].start == timedelta(minutes=30)
    assert slots[2].finish - now == timedelta(hours=5, minutes=5)


@pytest.mark.parametrize(
    ("load", "idle", "why"),
    [
        (MachineLoad(training_runs=1, cpu_percent=0.0), False, "another training run"),
        (MachineLoad(training_runs=0, cpu_percent=90.0), False, "processor is 90% busy"),
        (MachineLoad(training_runs=0, cpu_percent=10.0), True, ""),
        (MachineLoad(0, cpu_percent=95.0, gpu_util_percent=5.0, gpu_mem_percent=10.0), True, ""),
        (MachineLoad(0, cpu_percent=5.0, gpu_util_percent=60.0, gpu_mem_percent=10.0), False, "GPU is 60% busy"),
        (MachineLoad(0, cpu_percent=5.0, gpu_util_percent=0.0, gpu_mem_percent=70.0), False, "70% of the GPU"),
    ],
)
def test_idle_rule(load: MachineLoad, idle: bool, why: str):
    verdict, reason = idle_verdict(load)
    assert verdict is idle
    assert why in reason


def test_cron_patterns_are_checked_and_read_in_local_time():
    assert check_cron("0 3 * * *") == "0 3 * * *"
    for bad in ("every night", "61 * * * *", "0 3 * *"):
        with pytest.raises(StudioError, match="schedule Studio understands"):
            check_cron(bad)
    after = datetime(2026, 11, 23, 12, 0).astimezone()
    due = next_due("0 3 * * *", after).astimezone()
    assert (due.hour, due.minute) == (3, 0) and due.date() == (after + timedelta(days=1)).date()


def test_cron_schedule_queues_once_when_due_and_never_twice(tmp_path: Path):
    schedules, queue = Schedules(), RunQueue()
    schedule = schedules.add("nightly", _config(tmp_path), cron="0 3 * * *")
    created = datetime.fromisoformat(schedule.created_at.replace("Z", "+00:00"))
    assert schedules.tick(queue, now=created) == []  # not due yet
    later = created + timedelta(days=1, hours=1)
    queued = schedules.tick(queue, now=later)
    assert [e.name for e in queued] == ["nightly"] and queued[0].automatic
    assert schedules.tick(queue, now=later + timedelta(days=2)) == []  # one open retrain at a time
    assert "Queued automatically by schedule" in Registry().notes(queued[0].run_id)[0]


def test_watched_dataset_queues_on_content_change_only_when_it_validates(tmp_path: Path):
    config = _config(tmp_path)
    data = Path(config.dataset_path or "")
    schedules, queue = Schedules(), RunQueue()
    schedules.add("watched", config, watch=True)
    now = datetime.now(timezone.utc) + timedelta(seconds=10)
    assert schedules.tick(queue, now=now) == []  # nothing changed yet
    os.utime(data)  # a touch is not a change
    assert schedules.tick(queue, now=now) == []
    data.write_text(data.read_text() + '{"prompt": "bye", "completion": "goodbye"}\n')
    assert schedules.tick(queue, now=now, validates=lambda _s: "Row 4 has no answer.") == []
    notices = unseen_notices(Registry())
    assert len(notices) == 1 and "Row 4 has no answer." in notices[0].message
    assert schedules.tick(queue, now=now) == []  # that content was judged already: no second notice
    data.write_text(data.read_text() + '{"prompt": "and", "completion": "more"}\n')
    queued = schedules.tick(queue, now=now, validates=lambda _s: None)
    assert [e.name for e in queued] == ["watched"]


def test_a_file_still_being_written_waits_for_the_next_tick(tmp_path: Path):
    config = _config(tmp_path)
    schedules, queue = Schedules(), RunQueue()
    schedules.add("watched", config, watch=True)
    Path(config.dataset_path or "").write_text('{"prompt": "new", "completion": "data"}\n')
    assert schedules.tick(queue, validates=lambda _s: None) == []  # modified just now
    assert len(schedules.tick(queue, now=datetime.now(timezone.utc) + timedelta(seconds=5),
                              validates=lambda _s: None)) == 1


def test_schedule_needs_a_trigger_and_a_readable_watched_file(tmp_path: Path):
    with pytest.raises(StudioError, match="needs something that starts it"):
        Schedules().add("x", _config(tmp_path))
    with pytest.raises(StudioError, match="cannot watch"):
        Schedules().add("x", _config(tmp_path).updated(dataset_path=str(tmp_path / "gone.jsonl")), watch=True)
    schedule = Schedules().add("x", _config(tmp_path), cron="*/5 * * * *")
    Schedules().remove(schedule.id)
    assert Schedules().list() == []


def _finished_run(tmp_path: Path, registry: Registry, name: str, eval_loss: float | None, **config: object) -> str:
    entry = RunQueue(registry).add(_config(tmp_path, **config), name)
    adapter = final_adapter_dir(entry.run_dir)
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    registry.mark_running(entry.run_id)
    registry.mark_finished(entry.run_id, "completed", 0, metrics={"eval_loss": eval_loss})
    return entry.run_id


def test_first_finished_version_becomes_active_and_switching_is_recorded(tmp_path: Path):
    registry = Registry()
    first = _finished_run(tmp_path, registry, "pip", 1.0)
    second = _finished_run(tmp_path, registry, "pip", 0.5)
    assert active_run(registry, "pip").id == first
    assert default_run(registry, "pip").id == first  # export and the playground start from the active one
    assert default_run(registry, "pip@1.0.1").id == second
    activate(registry, second)
    assert active_run(registry, "pip").id == second
    history = activation_history(registry, "pip")
    assert [(h.run_id, h.previous_id, h.reason) for h in history] == [
        (first, None, "the first finished version"),
        (second, first, "chosen by you"),
    ]


def test_only_finished_runs_with_an_adapter_can_be_activated(tmp_path: Path):
    registry = Registry()
    entry = RunQueue(registry).add(_config(tmp_path), "pip")
    with pytest.raises(StudioError, match="cannot be made the active version"):
        activate(registry, entry.run_id)


def test_gate_compares_on_the_same_held_out_examples_when_it_can(tmp_path: Path):
    registry = Registry()
    old = registry.get(_finished_run(tmp_path, registry, "pip", 0.9))
    adapter = str(final_adapter_dir(old.run_dir))
    same = registry.get(_finished_run(tmp_path, registry, "pip", 1.0, compare_adapter=adapter))
    registry.mark_finished(same.id, "completed", 0,
                           metrics={"eval_loss": 1.3, "final_eval_loss": 1.0, "baseline_eval_loss": 1.2})
    decision = judge(registry.get(same.id), old)
    assert decision.activate and "same held-out examples" in decision.reason  # 1.0 beats 1.2 on the same data
    own = registry.get(_finished_run(tmp_path, registry, "pip", 1.0))
    decision = judge(own, old)
    assert not decision.activate and "worse than 0.9000" in decision.reason
    assert not judge(registry.get(_finished_run(tmp_path, registry, "pip", None)), old).activate
    equal = registry.get(_finished_run(tmp_path, registry, "pip", 0.90005))
    assert judge(equal, old).activate  # not worse: equal within float noise
