"""`studio train --objective` and `studio validate` on preference data, as a person runs them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from studio.cli.main import app
from studio.engine.config import Objective
from studio.engine.objectives import load_objectives

runner = CliRunner()


def _pairs(path: Path, rows: int = 20) -> Path:
    lines = [{"prompt": f"What is {i} plus {i}?", "chosen": f"Pip says {2 * i}.", "rejected": f"It is {i}."}
             for i in range(rows)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _train(*args: str):
    return runner.invoke(app, ["train", *args], env={"COLUMNS": "200"})


def test_a_preference_file_is_tuned_with_dpo_unless_told_otherwise(tmp_path: Path, tiny_model_dir: Path):
    data = _pairs(tmp_path / "pairs.jsonl")
    common = ("--dataset", str(data), "--model", str(tiny_model_dir), "--max-steps", "3", "--dry-run")
    chosen = _train(*common)
    assert chosen.exit_code == 0, chosen.output
    assert "training with DPO" in chosen.output and "│ objective " in chosen.output
    assert "│ dpo " in chosen.output and "20 to train on" in chosen.output
    orpo = _train(*common, "--objective", "ORPO", "--beta", "0.25")
    assert orpo.exit_code == 0, orpo.output
    assert "training with DPO" not in orpo.output and "│ orpo " in orpo.output and "│ 0.25 " in orpo.output


def test_an_objective_the_data_cannot_serve_is_refused_with_the_one_it_can(tmp_path: Path, tiny_model_dir: Path):
    data = _pairs(tmp_path / "pairs.jsonl")
    refused = _train("--dataset", str(data), "--model", str(tiny_model_dir), "--dry-run", "--objective", "sft")
    assert refused.exit_code == 2, refused.output
    assert "does not suit the SFT objective" in refused.output and "--objective dpo" in refused.output
    unknown = _train("--dataset", str(data), "--model", str(tiny_model_dir), "--dry-run", "--objective", "rlhf")
    assert unknown.exit_code != 0 and "'sft', 'dpo', 'orpo' or 'kto'" in unknown.output


def test_validate_names_the_preference_layout_and_measures_the_longer_side(tmp_path: Path, tiny_model_dir: Path):
    data = _pairs(tmp_path / "pairs.jsonl")
    result = runner.invoke(app, ["validate", str(data), "--model", str(tiny_model_dir)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "layout: preference pairs (prompt/chosen/rejected)" in result.output
    assert "per pair, longer side" in result.output


def test_every_objective_is_explained():
    objectives = load_objectives()
    assert list(objectives) == list(Objective.__args__)  # type: ignore[attr-defined]
    for objective, info in objectives.items():
        assert info.name and info.suits_when and info.data_needed
        assert bool(info.beta) == (objective != "sft")  # beta means something for preference tuning only
