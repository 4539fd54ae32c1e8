"""The event protocol: one writer, one parser, unknown fields kept, bad lines rejected."""

from __future__ import annotations

import json

import pytest

from studio.engine.events import (
    EVENT_TYPES,
    PROTOCOL_VERSION,
    Anomaly,
    EventParseError,
    Progress,
    now_iso,
    parse_event,
)


def test_every_event_kind_round_trips():
    samples = {"run_id": "r1", "seq": 3, "ts": now_iso()}
    required = {
        "progress": {"step": 1, "total_steps": 10, "eta_interval_s": (1.0, 2.0)},
        "eval": {"step": 2, "eval_loss": 1.5},
        "checkpoint": {"step": 2, "path": "/x"},
        "anomaly": {"anomaly": "nan", "severity": "critical", "message": "NaN loss"},
        "recovery": {"action": "rollback", "message": "rolled back"},
        "error": {"code": "oom", "message": "out of memory"},
    }
    for kind, cls in EVENT_TYPES.items():
        event = cls(**samples, **required.get(kind, {}))
        line = event.to_json()
        assert json.loads(line)["event"] == kind
        assert parse_event(line) == event


def test_unknown_fields_are_kept_in_extra():
    line = json.dumps({"event": "progress", "run_id": "r", "step": 1, "total_steps": 2, "future_field": 7})
    event = parse_event(line)
    assert isinstance(event, Progress) and event.extra == {"future_field": 7}
    assert json.loads(event.to_json())["future_field"] == 7
    assert event.v == PROTOCOL_VERSION


@pytest.mark.parametrize("line", [
    "not json", "[]", '{"event": "mystery", "run_id": "r"}', '{"event": "progress", "run_id": "r"}',
    b"\xff\xfe", '{"run_id": "r"}',
])
def test_bad_lines_raise_a_parse_error(line):
    with pytest.raises(EventParseError):
        parse_event(line)


def test_nan_is_refused_by_the_writer():
    with pytest.raises(ValueError):
        Anomaly(run_id="r", anomaly="nan", severity="critical", message="m", evidence={"loss": float("nan")}).to_json()


def test_timestamps_are_utc_iso():
    stamp = now_iso()
    assert stamp.endswith("Z") and "T" in stamp
