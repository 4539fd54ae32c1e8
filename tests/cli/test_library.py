"""`studio show`, `compare`, `chat`, `quality`, `clean` and `delete` on real tiny runs."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from studio.cli.main import app

runner = CliRunner()


def test_show_tells_lineage_results_and_disk(library):
    result = runner.invoke(app, ["show", "pip@1.1.0"])
    assert result.exit_code == 0, result.output
    assert "pip 1.1.0" in result.output and "Lineage: pip@1.0.0 → pip@1.1.0" in result.output
    assert "checkpoints" in result.output and "best_eval_loss" in result.output
    data = json.loads(runner.invoke(app, ["show", "run-parent", "--json"]).output)
    assert data["lineage"]["children"] == ["pip@1.1.0"] and data["disk"]["total"] > 0


def test_compare_json_and_text(library):
    result = runner.invoke(app, ["compare", "run-parent", "run-child", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [row["field"] for row in data["config_diff"]] == ["lora_r", "learning_rate"]
    assert len(data["curves"]) == 2 and len(data["curves"][0]["loss"]) == 3
    text = runner.invoke(app, ["compare", "run-parent", "run-child", "--by", "tokens"]).output
    assert "Settings that differ" in text and "★" in text
    bad = runner.invoke(app, ["compare", "run-parent"])
    assert bad.exit_code == 1 and "2 to 5" in bad.output and "Traceback" not in bad.output


def test_clean_dry_run_then_yes(library):
    checkpoints = library.parent.run_dir / "checkpoints"
    dry = runner.invoke(app, ["clean", "--dry-run"])
    assert dry.exit_code == 0 and "can be freed" in dry.output
    assert len(list(checkpoints.iterdir())) == 3
    declined = runner.invoke(app, ["clean"], input="n\n")
    assert "Nothing was removed" in declined.output and len(list(checkpoints.iterdir())) == 3
    done = runner.invoke(app, ["clean", "--yes", "--json"])
    assert done.exit_code == 0, done.output
    data = json.loads(done.output)
    assert data["freed_bytes"] == data["total_bytes"] > 0
    assert [p.name for p in checkpoints.iterdir()] == ["step-00000003"]


def test_chat_one_prompt_with_base(library):
    result = runner.invoke(app, ["chat", "run-child", "--base", "--prompt", "Hi", "--max-tokens", "4",
                                 "--temperature", "0"])
    assert result.exit_code == 0, result.output
    assert "Base model:" in result.output and "pip 1.1.0:" in result.output
    assert (library.child.run_dir / "playground.jsonl").exists()


def test_delete_and_unknown_run(library):
    result = runner.invoke(app, ["delete", "run-child", "--yes"])
    assert result.exit_code == 0 and "Deleted pip 1.1.0" in result.output
    assert not library.child.run_dir.exists()
    missing = runner.invoke(app, ["show", "run-child"])
    assert missing.exit_code == 1 and "no run called" in missing.output
