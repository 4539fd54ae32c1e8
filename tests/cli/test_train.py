"""`studio train`, `runs`, `stop`, `resume` as a person runs them: separate processes, real worker."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.errors import StudioError
from studio.engine.training.backends.base import check_method_supported


def _chat(path: Path, rows: int = 60) -> Path:
    lines = [json.dumps({"messages": [{"role": "user", "content": f"What is {i} plus {i}? " + "hm " * (i % 9)},
                                      {"role": "assistant", "content": f"Pip says {2 * i}."}]})
             for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _studio(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio.cli.main", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200", **(env or {})}, check=False)


def _runs() -> list[dict]:
    return json.loads(_studio("runs", "--json").stdout)


def _start_training(tmp_path: Path, model: Path, steps: int = 6, sleep: float = 1.5) -> tuple[subprocess.Popen, str]:
    """`studio train` started as from a terminal (a session of its own), once its worker reports progress."""
    data = _chat(tmp_path / "chat.jsonl")
    plan_like = {"config": {"base_model": "builtin", "micro_batch_size": 4, "gradient_accumulation": 1,
                            "max_length": 64, "learning_rate": 5e-3, "lora_r": 4, "lora_alpha": 8,
                            "checkpoint_every_steps": 2, "eval_every_steps": None, "num_epochs": 1.0},
                 "explanations": {}, "estimates": {}}
    (tmp_path / "plan.json").write_text(json.dumps(plan_like))
    train = subprocess.Popen(
        [sys.executable, "-m", "studio.cli.main", "train", "--config", str(tmp_path / "plan.json"), "--dataset",
         str(data), "--model", str(model), "--max-steps", str(steps), "--name", "pip"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "COLUMNS": "200", "STUDIO_TEST_FAULTS": f"sleep_per_step={sleep}"},
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and train.poll() is None:
        runs = _runs()
        if runs and runs[0]["status"] == "running":
            events = Path(runs[0]["run_dir"], "events.jsonl")
            if events.exists() and '"event":"progress"' in events.read_text():
                return train, runs[0]["id"]
        time.sleep(1)
    raise AssertionError(train.communicate())


def test_train_stop_from_another_terminal_then_resume(tmp_path: Path, tiny_model_dir: Path):
    train, run_id = _start_training(tmp_path, tiny_model_dir)
    stop = _studio("stop", run_id[:20])
    assert stop.returncode == 0, stop.stderr
    out, err = train.communicate(timeout=240)
    assert train.returncode == 130, out + err
    assert f"studio resume {run_id}" in out
    record = _runs()[0]
    assert record["status"] == "stopped" and record["version"] == "1.0.0" and record["name"] == "pip"
    assert record["config"]["max_steps"] == 6 and record["config"]["lora_r"] == 4  # file, then flags

    resumed = _studio("resume", run_id)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "Done." in resumed.stdout and "resuming at step" in resumed.stdout
    record = _runs()[0]
    assert record["status"] == "completed" and record["metrics"]["steps"] == 6
    again = _studio("stop", run_id)
    assert again.returncode == 1 and "not running" in again.stderr


def test_unknown_model_and_missing_dataset_exit_cleanly(tmp_path: Path):
    data = _chat(tmp_path / "chat.jsonl")
    missing_model = _studio("train", "--dataset", str(data), "--model", str(tmp_path / "no-such-model"))
    assert missing_model.returncode == 4 and "Traceback" not in missing_model.stderr
    missing_data = _studio("train", "--dataset", str(tmp_path / "nope.jsonl"), "--model", "builtin")
    assert missing_data.returncode == 2 and "does not exist" in missing_data.stderr
    assert _runs() == []


def test_dry_run_plans_for_this_machine_and_trains_nothing(tmp_path: Path, tiny_model_dir: Path):
    data = _chat(tmp_path / "chat.jsonl")
    result = _studio("train", "--dataset", str(data), "--model", str(tiny_model_dir), "--max-steps", "5", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Dry run" in result.stdout and "max_steps" in result.stdout and "54 to train on" in result.stdout
    assert _runs() == []


def test_qlora_on_cpu_offers_lora():
    with pytest.raises(StudioError) as caught:
        check_method_supported(TrainConfig(method="qlora"), "cpu")
    assert "LoRA" in caught.value.actions[0] and caught.value.code == "qlora_needs_cuda"
    check_method_supported(TrainConfig(method="dora"), "cpu")


def test_qlora_on_a_cpu_machine_is_refused_before_any_run_exists(tmp_path: Path, tiny_model_dir: Path):
    data = _chat(tmp_path / "chat.jsonl", rows=20)
    result = _studio("train", "--dataset", str(data), "--model", str(tiny_model_dir), "--config",
                     str(TrainConfig(method="qlora").save(tmp_path / "qlora.json")))
    assert result.returncode != 0
    assert "LoRA" in result.stderr and "Traceback" not in result.stderr
    assert _runs() == []


@pytest.fixture
def another_training(tmp_path: Path):
    """A run registered as training, with a live process as its worker (as the app or the queue leaves it)."""
    from studio.engine.runs.registry import Registry

    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    registry = Registry()
    registry.create_run("busy-run", "busy", TrainConfig.from_dict({"dataset_path": "/data/a.jsonl"}),
                        tmp_path / "busy-run")
    registry.mark_running("busy-run", pid=worker.pid)
    yield "busy-run"
    worker.kill()
    worker.wait()


def test_a_second_training_at_the_same_time_is_refused_with_a_pointer_to_the_queue(tmp_path, another_training):
    data = _chat(tmp_path / "chat.jsonl")
    result = _studio("train", "--dataset", str(data), "--model", str(tmp_path / "no-such-model"))
    assert result.returncode == 1, result.stderr
    assert "Another training run is already in progress" in result.stderr
    assert "studio queue add" in result.stderr and "--parallel" in result.stderr
    assert another_training in result.stderr
    assert [run["id"] for run in _runs()] == [another_training]  # nothing was created


def test_parallel_trains_anyway(tmp_path, another_training):
    data = _chat(tmp_path / "chat.jsonl")
    result = _studio("train", "--parallel", "--dataset", str(data), "--model", str(tmp_path / "no-such-model"))
    # Past the check: it goes on to look for the model (exit 4), as a lone training would.
    assert result.returncode == 4, result.stderr
    assert "Another training run" not in result.stderr


def test_ctrl_c_in_the_terminal_stops_with_a_checkpoint(tmp_path: Path, tiny_model_dir: Path):
    train, run_id = _start_training(tmp_path, tiny_model_dir)
    os.killpg(train.pid, signal.SIGINT)  # what Ctrl-C does: the terminal's foreground group, not the worker's
    out, err = train.communicate(timeout=240)
    assert train.returncode == 130, out + err
    assert "saving a checkpoint" in out and f"studio resume {run_id}" in out
    assert _runs()[0]["status"] == "stopped"


def test_closing_the_terminal_leaves_the_training_running_to_the_end(tmp_path: Path, tiny_model_dir: Path):
    train, run_id = _start_training(tmp_path, tiny_model_dir, steps=4, sleep=0.5)
    os.killpg(train.pid, signal.SIGHUP)  # the terminal window closes
    train.wait(30)
    deadline = time.monotonic() + 240
    while _runs()[0]["status"] == "running" and time.monotonic() < deadline:
        time.sleep(1)
    record = _runs()[0]
    assert record["id"] == run_id and record["status"] == "completed", record
    assert record["metrics"]["steps"] == 4


def test_a_worker_that_dies_is_reported_with_its_last_log_lines(tmp_path: Path, tiny_model_dir: Path):
    train, run_id = _start_training(tmp_path, tiny_model_dir)
    record = _runs()[0]
    log = Path(record["run_dir"], "logs", "worker.stderr.log")
    with log.open("a") as handle:  # what a dying library would have written last
        handle.write("RuntimeError: the native library gave up\n")
    os.kill(record["pid"], signal.SIGKILL)
    out, err = train.communicate(timeout=120)
    assert train.returncode != 0, out + err
    assert "ended unexpectedly (exit code -9)" in err and "the native library gave up" in err, err
    assert f"studio resume {run_id}" in err
    assert _runs()[0]["status"] == "interrupted"
