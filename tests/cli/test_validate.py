"""`studio validate`: exit 0 when usable, 2 when not, stable JSON, never a traceback."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from studio.cli.main import app
from studio.engine.datasets import sample_path

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["validate", *args])


def test_usable_file_exits_0_with_a_readable_summary():
    result = invoke(str(sample_path("qa")))
    assert result.exit_code == 0, result.output
    assert "Usable" in result.output and "60 usable" in result.output
    assert "question → user" in result.output


def test_json_output_is_the_documented_report():
    result = invoke(str(sample_path("code")), "--profile", "code", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["version"] == 1 and data["usable"] is True and data["schema"] == "alpaca"
    assert data["profile"] == "code"
    assert {"rows_read", "rows_usable", "rows_skipped", "issues", "stats", "split", "counts"} <= set(data)


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"", "empty_file"),
        (b"\x00\x01\x02\x03" * 64, "binary_file"),
        (b'[{"prompt": "a", "compl', "json_invalid"),
    ],
)
def test_unusable_files_exit_2_and_say_why(tmp_path, content, code):
    path = tmp_path / "data.json"
    path.write_bytes(content)
    result = invoke(str(path), "--json")
    assert result.exit_code == 2
    data = json.loads(result.stdout)
    assert data["usable"] is False and code in {issue["code"] for issue in data["issues"]}
    human = invoke(str(path))
    assert human.exit_code == 2 and "Not usable" in human.output and "Traceback" not in human.output


def test_directory_and_missing_file_exit_2(tmp_path):
    assert invoke(str(tmp_path)).exit_code == 2
    assert invoke(str(tmp_path / "nope.jsonl")).exit_code == 2


def test_mapping_flag_overrides_the_guess(tmp_path):
    path = tmp_path / "odd.csv"
    path.write_text("ask,tell\n" + "".join(f"question {i:02d},answer {i:02d}\n" for i in range(12)), encoding="utf-8")
    assert invoke(str(path)).exit_code == 0
    result = invoke(str(path), "--mapping", "tell=user", "--mapping", "ask=assistant", "--json")
    assert json.loads(result.stdout)["mapping"] == {"tell": "user", "ask": "assistant"}
    bad = invoke(str(path), "--mapping", "ask=boss")
    assert bad.exit_code == 2 and "not a role" in bad.output


def test_unknown_model_exits_4(tmp_path):
    result = invoke(str(sample_path("qa")), "--model", str(tmp_path / "no-model"))
    assert result.exit_code == 4 and "Traceback" not in result.output


@pytest.mark.slow
def test_builtin_model_adds_token_statistics(builtin_model_dir):
    result = invoke(str(sample_path("chatbot")), "--model", "builtin", "--max-length", "128", "--json")
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)["stats"]
    assert stats["total_tokens"] > 20000 and stats["max_length"] == 128
    assert 0 < stats["over_max_length"] < stats["examples"]
    human = invoke(str(sample_path("chatbot")), "--model", "builtin")
    assert human.exit_code == 0 and "p99" in human.output
