"""One real finished run on the tiny model, trained once per test module by the supervisor's worker, and
copied into each test's own Studio home so that exports and resumes never disturb one another."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.runs.folders import create_run_dir
from studio.engine.runs.registry import Registry, RunRecord
from studio.engine.training.supervisor import Supervisor

RUN_ID = "run-tiny"
RUN_NAME = "tiny-helper"


def _write_messages(path: Path, rows: int = 24) -> Path:
    lines = [json.dumps({"messages": [{"role": "user", "content": f"Say the number {i}."},
                                      {"role": "assistant", "content": f"The number is {i}."}]})
             for i in range(rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def train_tiny_run(home: Path, model_dir: Path) -> Path:
    """Train a 2-step run into `home` (its own Studio home) and return `home`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STUDIO_HOME", str(home))
        patch.setenv("OMP_NUM_THREADS", "1")
        data = _write_messages(home / "messages.jsonl")
        config = TrainConfig.from_dict({
            "base_model": str(model_dir), "dataset_path": str(data), "profile": "chatbot", "max_steps": 2,
            "micro_batch_size": 4, "gradient_accumulation": 1, "max_length": 64, "lora_r": 4,
            "lora_alpha": 8, "eval_fraction": 0.0, "checkpoint_every_steps": 1,
        })
        run_dir = create_run_dir(config, RUN_ID, root=home / "runs")
        registry = Registry(home / "studio.sqlite")
        registry.create_run(RUN_ID, RUN_NAME, config, run_dir)
        supervisor = Supervisor(run_dir)
        supervisor.start()
        outcome = supervisor.wait(timeout=300)
        logs = "".join(p.read_text() for p in (run_dir / "logs").glob("*.log"))
        assert outcome.exit_code == 0, logs[-3000:]
        record = registry.get(RUN_ID)
        assert record is not None and record.status == "completed", (record, logs[-3000:])
    return home


def install_run(source: Path, studio_home: Path) -> RunRecord:
    """Copy the trained run and its registry row into this test's Studio home."""
    shutil.copytree(source / "runs", studio_home / "runs", dirs_exist_ok=True)
    with sqlite3.connect(source / "studio.sqlite") as src, sqlite3.connect(studio_home / "studio.sqlite") as dst:
        src.backup(dst)
        dst.execute("UPDATE runs SET run_dir = replace(run_dir, ?, ?)",
                    (str(source / "runs"), str(studio_home / "runs")))
    src.close()
    dst.close()
    record = Registry(studio_home / "studio.sqlite").get(RUN_ID)
    assert record is not None
    return record
