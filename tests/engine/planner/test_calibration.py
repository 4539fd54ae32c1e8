"""A run's measured speed is recorded per machine and model, and the next estimate starts from it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.events import Completed, Eval, Event, Heartbeat, Paused, Progress, Started, parse_event
from studio.engine.planner import estimate
from studio.engine.planner.calibration import CalibrationStore, RunTiming, machine_key

RECORDED = Path(__file__).parents[2] / "gui" / "monitor" / "data" / "recorded-run.jsonl"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
# 200 real tokens per example (max_length 500 without a dataset: the planner assumes 40% filled).
CONFIG = TrainConfig(base_model="builtin", micro_batch_size=4, gradient_accumulation=1, max_length=500,
                     max_steps=100, eval_fraction=0.0)


def _ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def run_events(seconds_per_step: float, steps: int = 10, startup: float = 45.0, finish: float = 20.0,
               run_id: str = "r") -> list[Event]:
    """A worker's stream as it writes it: loading, started, one progress per step, completed."""
    events: list[Event] = [Heartbeat(run_id=run_id, ts=_ts(0), phase="loading_model", message="Loading the model"),
                           Started(run_id=run_id, ts=_ts(startup), config=CONFIG.model_dump(mode="json"),
                                   device="cpu", total_steps=100, train_examples=400)]
    for step in range(1, steps + 1):
        elapsed = step * seconds_per_step
        events.append(Progress(run_id=run_id, ts=_ts(startup + elapsed), step=step, total_steps=100,
                               elapsed_s=elapsed, tokens_seen=step * 800))
    events.append(Completed(run_id=run_id, ts=_ts(startup + steps * seconds_per_step + finish), step=steps))
    return events


def fold(events: list[Event]) -> RunTiming:
    timing = RunTiming()
    for event in events:
        timing.observe(event)
    return timing


def test_a_run_measures_seconds_per_token_startup_and_finish() -> None:
    measured = fold(run_events(6.0)).measurement()
    assert measured is not None
    assert measured.seconds_per_token == pytest.approx(6.0 / 800)
    assert measured.tokens_per_example == pytest.approx(200.0)
    assert measured.startup_s == pytest.approx(45.0) and measured.finish_s == pytest.approx(20.0)
    assert fold(run_events(6.0, steps=2)).measurement() is None  # two steps are not a measurement yet


def test_evaluations_are_counted_the_way_the_planner_counts_them() -> None:
    events = run_events(6.0)
    started = events[1]
    assert isinstance(started, Started)
    events[1] = Started(run_id="r", ts=started.ts, config=started.config, device="cpu", eval_examples=30)
    events.insert(6, Eval(run_id="r", ts=events[5].ts, step=4, eval_loss=1.0))
    measured = fold(events).measurement()
    assert measured is not None  # the same seconds now also paid for 30 examples × 200 tokens at a third
    assert measured.seconds_per_token == pytest.approx(54.0 / (7200 + 30 * 200 / 3))


def test_only_the_latest_worker_counts() -> None:
    first = [*run_events(20.0)[:-1], Paused(run_id="r", ts=_ts(300), step=10, released=True)]
    measured = fold(first + run_events(6.0)).measurement()
    assert measured is not None and measured.seconds_per_token == pytest.approx(6.0 / 800)


def test_a_worker_after_an_interrupted_one_starts_a_new_measurement() -> None:
    vanished = run_events(20.0)[:-1]  # killed: no completed, stopped or error event
    later = run_events(6.0, startup=30.0)
    measured = fold(vanished + later).measurement()
    assert measured is not None and measured.seconds_per_token == pytest.approx(6.0 / 800)
    assert measured.startup_s == pytest.approx(30.0)


def test_a_real_recorded_run_gives_a_measurement() -> None:
    events = [parse_event(line) for line in RECORDED.read_text(encoding="utf-8").splitlines() if line.strip()]
    measured = fold(events).measurement()
    assert measured is not None and measured.seconds_per_token > 0
    assert measured.startup_s is not None and 0 < measured.startup_s < 120
    assert measured.finish_s is not None and measured.finish_s >= 0


def test_the_next_estimate_uses_the_measurement(make_machine, smollm, tmp_path: Path) -> None:
    cpu = make_machine("cpu_24gb")
    store = CalibrationStore(tmp_path / "calibration.json")
    planned = estimate(CONFIG, cpu, smollm, None, calibration=store)
    assert store.record(cpu, fold(run_events(planned.seconds_per_step * 2))) is not None  # twice as slow

    again = CalibrationStore(tmp_path / "calibration.json")  # read back from the file, as a new session does
    calibrated = estimate(CONFIG, cpu, smollm, None, calibration=again)
    assert calibrated.seconds_per_step == pytest.approx(planned.seconds_per_step * 2)
    expected = 100 * planned.seconds_per_step * 2 + 45.0 + 20.0
    assert calibrated.total_time_s.expected == pytest.approx(expected)
    spread = calibrated.total_time_s.high / calibrated.total_time_s.low
    assert spread < planned.total_time_s.high / planned.total_time_s.low  # a measurement narrows the range

    longer = estimate(CONFIG.updated(max_length=1000), cpu, smollm, None, calibration=again)
    assert longer.seconds_per_step > 2 * calibrated.seconds_per_step  # twice the tokens, and more attention
    other_model = estimate(CONFIG.updated(base_model="someone/else"), cpu, smollm, None, calibration=again)
    assert other_model.seconds_per_step == pytest.approx(planned.seconds_per_step)
    other_machine = estimate(CONFIG, make_machine("cpu_8gb"), smollm, None, calibration=again)
    assert other_machine.seconds_per_step != pytest.approx(calibrated.seconds_per_step)


def test_repeated_runs_blend_and_other_devices_are_not_recorded(make_machine, tmp_path: Path) -> None:
    cpu = make_machine("cpu_24gb")
    store = CalibrationStore(tmp_path / "calibration.json")
    store.record(cpu, fold(run_events(10.0)))
    blended = store.record(cpu, fold(run_events(6.0)))
    assert blended is not None and blended.runs == 2
    assert 6.0 / 800 < blended.seconds_per_token < 10.0 / 800
    assert store.record(make_machine("t4_16gb"), fold(run_events(6.0))) is None  # the run said cpu
    assert list(store.entries()) == [f"{machine_key(cpu)}|builtin|fp32|none|no-gc"]


def test_a_damaged_store_is_ignored(make_machine, tmp_path: Path) -> None:
    path = tmp_path / "calibration.json"
    path.write_text("{broken", encoding="utf-8")
    store = CalibrationStore(path)
    assert store.entries() == {}
    assert store.record(make_machine("cpu_24gb"), fold(run_events(6.0))) is not None
    assert len(CalibrationStore(path).entries()) == 1
