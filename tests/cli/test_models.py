"""`studio models`: local models with fit verdicts, and a clear offline message for --search."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from studio.cli.main import app

runner = CliRunner()


def test_models_json_lists_the_builtin_first_with_a_fit_verdict():
    result = runner.invoke(app, ["models", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["query"] is None and data["device"] in {"cpu", "cuda", "mps"}
    first = data["models"][0]
    assert first["ref"] == "builtin:smollm2-135m-instruct" and first["source"] == "builtin"
    assert first["n_params"] == 134_515_008
    assert first["fit"]["status"] == "fits" and "GB" in first["fit"]["reason"]
    assert set(first) >= {"ref", "name", "source", "path", "n_params", "size_mb", "license", "context_length",
                          "downloads", "likes", "architecture", "has_chat_template", "fit"}


def test_models_table_for_people():
    result = runner.invoke(app, ["models"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "builtin:smollm2-135m-instruct" in result.stdout and "fits" in result.stdout


def test_search_offline_is_a_clear_error_not_a_traceback():
    result = runner.invoke(app, ["models", "--search", "llama"])
    assert result.exit_code == 1
    assert "cannot search Hugging Face" in result.output
    assert ("Traceback" not in result.output and result.exception is None) or isinstance(result.exception,
                                                                                           SystemExit)
