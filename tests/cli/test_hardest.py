"""`studio hardest` on the real tiny library runs: text and JSON, the next version's settings, a run without
a report yet, and mistakes answered plainly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from studio.cli import hardest
from studio.engine.config import TrainConfig

runner = CliRunner()
app = typer.Typer(add_completion=False)


@app.callback()
def _root() -> None:
    """Only `hardest`, as studio.cli.main registers it."""


hardest.register(app)


def _text(*args: str) -> str:
    """The command's output with rich's line wrapping undone."""
    result = runner.invoke(app, ["hardest", *args])
    assert result.exit_code == 0, result.output
    return " ".join(result.output.split())


def _json(*args: str) -> dict:
    result = runner.invoke(app, ["hardest", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_table_then_json_worst_first(library):
    text = _text("pip@1.0.0", "--top", "3")
    assert "Hardest examples of pip 1.0.0" in text and "Showing 3 of" in text
    assert "studio hardest run-parent --exclude 1,3 --queue" in text

    data = _json("run-parent", "--top", "4")
    assert data["run"] == {"id": "run-parent", "name": "pip", "version": "1.0.0"} and data["step"] == 3
    assert data["split"] == "all" and set(data["splits"]) == {"train", "eval"}
    rows = data["examples"]
    assert [row["rank"] for row in rows] == [1, 2, 3, 4]
    assert [row["loss"] for row in rows] == sorted((row["loss"] for row in rows), reverse=True)
    assert set(rows[0]) == {"rank", "split", "index", "fingerprint", "loss", "tokens", "preview", "text"}
    assert "<|im_start|>assistant" in rows[0]["text"] and data["next_version"] is None
    held = _json("run-parent", "--split", "eval")
    assert {row["split"] for row in held["examples"]} == {"eval"}
    assert held["matching"] == data["splits"]["eval"]["scored"]


def test_exclude_saves_the_next_version(library, tmp_path: Path):
    listing = _json("run-child", "--split", "train", "--top", "5")["examples"]
    target = tmp_path / "next.json"
    text = _text("run-child", "--split", "train", "--exclude", "1, 3,1", "--save-config", str(target))
    assert "studio train --config" in text and "--name pip" in text and "studio queue add --config" in text
    config = TrainConfig.load(target)
    assert config.exclude_examples == [listing[0]["fingerprint"], listing[2]["fingerprint"]]
    assert config.init_adapter is None and config.lora_r == library.child.config["lora_r"]

    spaced = tmp_path / "my settings" / "next.json"
    spaced.parent.mkdir()
    text = _text("run-child", "--exclude", "1", "--save-config", str(spaced))
    assert f"studio train --config '{spaced}' --name pip" in text  # a command to copy is shell-quoted

    data = _json("run-child", "--exclude", "2", "--save-config", str(tmp_path / "again.json"))
    assert data["next_version"]["excluded"] == [data["examples"][1]["fingerprint"]]
    assert data["next_version"]["config_file"] == str(tmp_path / "again.json")


def test_exclude_queues_the_next_version_in_one_step(library):
    from studio.engine.queue import RunQueue
    from studio.engine.runs.registry import Registry

    listing = _json("run-child", "--split", "train", "--top", "3")["examples"]
    text = _text("run-child", "--split", "train", "--exclude", "1,2", "--queue")
    (entry,) = RunQueue().entries()
    assert f"Queued pip {entry.version}" in text and "studio queue run" in text
    assert entry.name == "pip" and entry.state == "waiting"
    config = Registry().get(entry.run_id).config
    assert config["exclude_examples"] == [listing[0]["fingerprint"], listing[1]["fingerprint"]]
    assert config["init_adapter"] is None


def test_a_run_without_a_report_is_scored_first(library):
    report = library.parent.run_dir / "hardest.json"
    before = {e["fingerprint"]: e["loss"] for e in json.loads(report.read_text(encoding="utf-8"))["examples"]}
    report.unlink()
    result = runner.invoke(app, ["hardest", "run-parent", "--top", "2", "--json"])
    assert result.exit_code == 0, result.output
    assert "no hardest-examples report yet" in result.stderr and report.exists()
    rows = json.loads(result.stdout)["examples"]
    assert [row["loss"] for row in rows] == pytest.approx([before[row["fingerprint"]] for row in rows], abs=1e-4)


def test_mistakes_are_explained_without_a_traceback(library, tmp_path: Path):
    for args, words in (
        (["nowhere"], "There is no run called 'nowhere'"),
        (["run-parent", "--split", "test"], "'test' is not a split"),
        (["run-parent", "--exclude", "1"], "--exclude goes with --queue or --save-config"),
        (["run-parent", "--queue"], "--exclude goes with --queue or --save-config"),
        (["my run", "--queue"], "studio hardest 'my run' --exclude 1,3 --queue"),
        (["run-parent", "--exclude", "999", "--save-config", str(tmp_path / "x.json")], "'999' is not a rank"),
    ):
        result = runner.invoke(app, ["hardest", *args])
        assert result.exit_code == 1, (args, result.output)
        assert words in result.output and "Traceback" not in result.output
    assert not (tmp_path / "x.json").exists()
