"""Worker mode for the frozen bundle: the supervisor's command, the dispatcher, and a real two-step run
started the way a bundle starts its worker (`<executable> --studio-worker RUN_DIR`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from studio.engine import frozen
from studio.engine.config import TrainConfig
from studio.engine.errors import ExitCode
from studio.engine.runs.folders import create_run_dir, final_adapter_dir
from studio.engine.training import supervisor
from tests.engine.library.factory import write_qa_jsonl


def test_not_frozen_starts_the_worker_as_a_python_module(tmp_path):
    assert not frozen.is_frozen()
    assert supervisor.worker_command(tmp_path) == [sys.executable, "-m", "studio.engine.training.worker",
                                                   str(tmp_path)]


def test_frozen_starts_its_own_executable_in_worker_mode(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", "/opt/Studio/Studio")
    assert frozen.is_frozen()
    assert supervisor.worker_command(tmp_path) == ["/opt/Studio/Studio", "--studio-worker", str(tmp_path)]


@pytest.mark.parametrize("argv", [[], ["train", "--dataset", "x.jsonl"], ["--help"], ["runs", "--studio-worker"]])
def test_everything_else_goes_to_the_command_line(argv):
    assert frozen.dispatch(argv) is None


def test_worker_mode_without_a_run_folder_is_a_usage_error(capsys):
    assert frozen.dispatch(["--studio-worker"]) == ExitCode.ERROR
    assert "usage" in capsys.readouterr().err


def test_smoke_test_flag_shows_the_main_window():
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run([sys.executable, "-m", "studio", "--smoke-test"], capture_output=True, text=True,
                            timeout=120, env=env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "main window was shown" in result.stdout


def test_two_steps_through_the_worker_switch(tmp_path, tiny_model_dir):
    """`studio --studio-worker RUN_DIR` trains a real run to the end, exactly as the bundle's worker does."""
    data = write_qa_jsonl(tmp_path / "qa.jsonl", rows=16)
    config = TrainConfig(base_model=str(tiny_model_dir), dataset_path=str(data), max_steps=2, micro_batch_size=2,
                         gradient_accumulation=1, max_length=64, eval_fraction=0.0, checkpoint_every_steps=2)
    run_dir = create_run_dir(config, "frozen-switch", root=tmp_path / "runs")
    result = subprocess.run([sys.executable, "-m", "studio", "--studio-worker", str(run_dir)], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "2"}, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    streamed = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert streamed[-1]["event"] == "completed", streamed[-1]
    assert streamed[-1]["step"] == 2
    assert (final_adapter_dir(run_dir) / "adapter_config.json").is_file()
    recorded = [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]
    assert recorded[-1] == streamed[-1]


def test_frozen_bundle_runs_helper_modules_and_scripts_itself(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert frozen.module_command("pkg.mod", "a")[1:] == ["-m", "pkg.mod", "a"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert frozen.module_command("pkg.mod", "a") == [sys.executable, frozen.MODULE_FLAG, "pkg.mod", "a"]
    script = tmp_path / "convert.py"
    script.write_text("import sys, helper\nopen(sys.argv[2], 'w').write(sys.argv[1] + helper.WORD)\nsys.exit(3)\n")
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "helper.py").write_text("WORD = '-ok'\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "lib"))
    out = tmp_path / "out.txt"
    command = frozen.script_command(script, "model", str(out))
    assert command[:2] == [sys.executable, frozen.SCRIPT_FLAG]
    assert frozen.dispatch(command[1:]) == 3
    assert out.read_text() == "model-ok"
    data = tmp_path / "in.json"
    data.write_text('{"b": 1}')
    pretty = tmp_path / "pretty.json"
    assert frozen.dispatch([frozen.MODULE_FLAG, "json.tool", str(data), str(pretty)]) == 0
    assert '"b": 1' in pretty.read_text()
