"""`studio queue …`, `studio schedule …` and `studio activate` as a person types them (the queue's training
itself is tested in tests/engine/queue)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from studio.cli.main import app
from studio.cli.queue import parse_start
from studio.engine.errors import StudioError

runner = CliRunner()


@pytest.fixture
def recipe(tmp_path: Path, tiny_model_dir: Path) -> list[str]:
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(
        json.dumps({"messages": [{"role": "user", "content": f"Add {i} and {i}"},
                                 {"role": "assistant", "content": f"Pip says {2 * i}."}]}) + "\n"
        for i in range(30)))
    config = tmp_path / "recipe.json"
    config.write_text(json.dumps({"base_model": str(tiny_model_dir), "max_length": 64, "micro_batch_size": 2}))
    return ["--config", str(config), "--dataset", str(data), "--max-steps", "3"]


def _queue() -> dict:
    result = runner.invoke(app, ["queue", "list", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_add_list_move_pause_and_remove(recipe: list[str]):
    for name in ("first", "second"):
        added = runner.invoke(app, ["queue", "add", *recipe, "--name", name])
        assert added.exit_code == 0, added.output
        assert f"Queued {name} 1.0.0" in added.output
    later = runner.invoke(app, ["queue", "add", *recipe, "--name", "third", "--at", "03:00", "--when-idle", "--json"])
    assert json.loads(later.output)["when_idle"] is True
    listing = _queue()
    assert [e["name"] for e in listing["entries"]] == ["first", "second", "third"]
    assert all(e["estimated_start"] and e["estimated_finish"] for e in listing["entries"])
    assert listing["entries"][0]["estimate_s"] > 0  # the planner's estimate for this machine
    text = runner.invoke(app, ["queue", "list"]).output
    assert "first 1.0.0" in text and "when idle" in text and "not before" in text

    third = listing["entries"][2]["id"]
    moved = runner.invoke(app, ["queue", "move", str(third), "1"])
    assert moved.exit_code == 0, moved.output
    assert [e["name"] for e in _queue()["entries"]] == ["third", "first", "second"]

    assert runner.invoke(app, ["queue", "pause"]).exit_code == 0
    assert _queue()["paused"] is True
    assert "(paused)" in runner.invoke(app, ["queue", "list"]).output
    assert runner.invoke(app, ["queue", "resume"]).exit_code == 0
    assert _queue()["paused"] is False

    removed = runner.invoke(app, ["queue", "remove", str(third)])
    assert removed.exit_code == 0 and "Removed third 1.0.0" in removed.output
    assert [e["name"] for e in _queue()["entries"]] == ["first", "second"]
    missing = runner.invoke(app, ["queue", "remove", "999"])
    assert missing.exit_code == 1 and "no queue entry 999" in missing.output


def test_nothing_is_queued_for_a_model_that_does_not_exist(recipe: list[str], tmp_path: Path):
    result = runner.invoke(app, ["queue", "add", *recipe, "--model", str(tmp_path / "no-such-model")])
    assert result.exit_code == 4, result.output
    assert "Traceback" not in result.output
    assert _queue()["entries"] == []


def test_start_times_are_read_as_the_clock_or_a_date():
    from datetime import datetime

    evening = datetime(2026, 11, 23, 22, 0)
    assert parse_start("03:00", evening) == datetime(2026, 11, 24, 3, 0)
    assert parse_start("23:30", evening) == datetime(2026, 11, 23, 23, 30)
    assert parse_start("2026-12-01 08:15", evening) == datetime(2026, 12, 1, 8, 15)
    with pytest.raises(StudioError, match="not a time Studio understands"):
        parse_start("tomorrowish", evening)
    bad = runner.invoke(app, ["queue", "list", "--all"])
    assert bad.exit_code == 0


def test_schedules_are_checked_listed_and_removed(recipe: list[str]):
    bad = runner.invoke(app, ["schedule", "add", *recipe, "--cron", "every night"])
    assert bad.exit_code == 1 and "five parts" in bad.output and "0 3 * * *" in bad.output
    none = runner.invoke(app, ["schedule", "add", *recipe])
    assert none.exit_code == 1 and "needs something that starts it" in none.output
    good = runner.invoke(app, ["schedule", "add", *recipe, "--name", "pip", "--cron", "0 3 * * *", "--watch"])
    assert good.exit_code == 0, good.output
    assert "retrain pip on the schedule '0 3 * * *' or when chat.jsonl changes" in good.output
    listed = json.loads(runner.invoke(app, ["schedule", "list", "--json"]).output)
    assert [(s["name"], s["cron"], s["watch"]) for s in listed] == [("pip", "0 3 * * *", True)]
    assert "Nothing is due." in runner.invoke(app, ["schedule", "check"]).output
    removed = runner.invoke(app, ["schedule", "remove", str(listed[0]["id"])])
    assert removed.exit_code == 0 and "removed" in removed.output
    assert "No schedules" in runner.invoke(app, ["schedule", "list"]).output


def test_activate_switches_the_version_export_starts_from(library):
    from studio.engine.export.run_info import find_run

    runs = json.loads(runner.invoke(app, ["runs", "--json"]).output)
    assert {r["version"]: r["active"] for r in runs} == {"1.0.0": True, "1.1.0": False}
    assert find_run("pip") == library.parent.run_dir  # a name means its active version
    result = runner.invoke(app, ["activate", "pip@1.1.0"])
    assert result.exit_code == 0, result.output
    assert "pip 1.1.0 is now the active version (was 1.0.0)" in result.output
    assert find_run("pip") == library.child.run_dir
    runs = json.loads(runner.invoke(app, ["runs", "--json"]).output)
    assert {r["version"]: r["active"] for r in runs} == {"1.0.0": False, "1.1.0": True}
    assert "(active)" in runner.invoke(app, ["runs"]).output


def test_only_a_finished_run_can_be_activated(recipe: list[str]):
    runner.invoke(app, ["queue", "add", *recipe, "--name", "waiting"])
    result = runner.invoke(app, ["activate", "waiting"])
    assert result.exit_code == 1 and "cannot be made the active version" in result.output
    assert "Resume it first" in result.output
