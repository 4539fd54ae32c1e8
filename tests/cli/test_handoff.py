"""`studio handoff export` and `studio handoff import` through the real command line."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from studio.cli.main import app
from studio.engine.config import TrainConfig
from studio.engine.runs.creation import new_run_id
from studio.engine.runs.folders import create_run_dir, events_file
from studio.engine.runs.registry import Registry
from studio.engine.training.entry import run_worker
from studio.engine.training.sinks import FileSink
from tests.engine.library.factory import write_qa_jsonl

runner = CliRunner()


def test_export_train_import(tmp_path, tiny_model_dir, studio_home, monkeypatch):
    data = write_qa_jsonl(tmp_path / "qa.jsonl", rows=16)
    config = TrainConfig(base_model=str(tiny_model_dir), dataset_path=str(data), max_steps=2, micro_batch_size=2,
                         gradient_accumulation=1, max_length=64, eval_fraction=0.0, checkpoint_every_steps=2)
    run_id = new_run_id("pip")
    Registry().create_run(run_id, "pip", config, create_run_dir(config, run_id))

    result = runner.invoke(app, ["handoff", "export", "pip", "--out", str(tmp_path / "bundle")])
    assert result.exit_code == 0, result.output
    bundle = tmp_path / "bundle"
    assert "bash launch.sh" in result.output and (bundle / "launch.sh").is_file()

    result = runner.invoke(app, ["handoff", "import", str(bundle)])
    assert result.exit_code == 1
    assert "holds no finished training" in " ".join(result.output.split()) and "Traceback" not in result.output

    # Train the bundle's run as the rented machine would: from inside the bundle, with its own library.
    monkeypatch.chdir(bundle)
    monkeypatch.setenv("STUDIO_HOME", str(bundle / ".studio"))
    remote_run = bundle / "run" / run_id
    assert run_worker(remote_run, [FileSink(events_file(remote_run))]) == 0
    monkeypatch.setenv("STUDIO_HOME", str(studio_home))

    result = runner.invoke(app, ["handoff", "import", str(bundle)])
    assert result.exit_code == 0, result.output
    assert "pip v1.0.1, completed" in " ".join(result.output.split())
    imported = Registry().find("pip")
    assert imported.id != run_id and imported.parent_id == run_id
    assert json.loads(events_file(imported.run_dir).read_text().splitlines()[-1])["event"] == "completed"
