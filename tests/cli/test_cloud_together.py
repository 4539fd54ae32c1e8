"""`studio cloud train --provider together` reaches the Together AI path (a job, no machine to pick), against
the fake Together on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from studio.cli.main import app
from studio.engine.cloud import save_api_key
from studio.engine.runs.registry import Registry
from tests.engine.cloud.fake_together import GOOD_KEY, fake_together


@pytest.fixture
def together(monkeypatch, tmp_path, tiny_model_dir):
    with fake_together(monkeypatch, tmp_path, tiny_model_dir) as api:
        save_api_key("together", GOOD_KEY)
        yield api


def test_a_model_together_does_not_tune_is_refused_in_words_and_nothing_is_created(together, tiny_model_dir,
                                                                                 tmp_path: Path):
    data = tmp_path / "chat.jsonl"
    data.write_text("\n".join(json.dumps({"messages": [{"role": "user", "content": f"Question {i}?"},
                                                       {"role": "assistant", "content": f"Answer {i}."}]})
                              for i in range(12)) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["cloud", "train", "--provider", "together", "--dataset", str(data),
                                      "--model", str(tiny_model_dir), "--budget", "5", "--max-steps", "2"],
                                env={"COLUMNS": "200"})
    assert result.exit_code != 0
    assert "Together" in result.output and "Traceback" not in result.output
    assert together.created == []  # no job was started
    assert len(Registry().list_runs()) == 1  # the run exists, ready to train here or elsewhere
