"""Real runs for the library tests, trained once per session by the real worker on the tiny model.

`build_library_home` trains a parent run and a continued child (in parallel, a few steps each, a checkpoint
and an evaluation at every step) into a session folder; `install_library` copies that folder into a test's
own Studio home, so tests that clean up or delete never disturb each other.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from studio.engine.config import TrainConfig
from studio.engine.runs.folders import create_run_dir
from studio.engine.runs.registry import Registry, RunRecord

STEPS = 3


def write_qa_jsonl(path: Path, rows: int = 60, seed: int = 0) -> Path:
    """Short question-answer chats with a fixed persona (Q&A-like; 50+ rows so a held-out split is made)."""
    rng = random.Random(seed)
    lines = []
    for _ in range(rows):
        a, b = rng.randint(1, 20), rng.randint(1, 20)
        messages = [{"role": "user", "content": f"What is {a} plus {b}?"},
                    {"role": "assistant", "content": f"Pip says {a + b}."}]
        lines.append(json.dumps({"messages": messages}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _config(model_dir: Path, data: Path, **overrides: object) -> TrainConfig:
    settings: dict[str, object] = {
        "base_model": str(model_dir), "dataset_path": str(data), "profile": "qa", "max_steps": STEPS,
        "micro_batch_size": 4, "gradient_accumulation": 1, "max_length": 64, "learning_rate": 5e-3,
        "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "checkpoint_every_steps": 1, "eval_every_steps": 1,
        "keep_last_checkpoints": 10, "keep_best_checkpoints": 10, "eval_fraction": 0.1, "warmup_ratio": 0.0,
        "lr_scheduler": "constant",
    }
    settings.update(overrides)
    return TrainConfig.from_dict(settings)


def build_library_home(home: Path, model_dir: Path) -> Path:
    """Train `pip` 1.0.0 and its continuation 1.1.0 (another learning rate and rank) into `home`."""
    if (home / "ready").exists():
        return home
    home.mkdir(parents=True, exist_ok=True)
    data = write_qa_jsonl(home / "qa.jsonl")
    registry = Registry(home / "studio.sqlite")
    made = []
    for run_id, overrides, parent in (("run-parent", {}, None),
                                      ("run-child", {"learning_rate": 1e-3, "lora_r": 8}, "run-parent")):
        config = _config(model_dir, data, **overrides)
        run_dir = create_run_dir(config, run_id, root=home / "runs")
        registry.create_run(run_id, "pip", config, run_dir, parent_id=parent, kind="continue")
        made.append(run_dir)
    env = {**os.environ, "STUDIO_HOME": str(home), "OMP_NUM_THREADS": "1"}
    workers = []
    for run_dir in made:
        command = [sys.executable, "-m", "studio.engine.training.worker", str(run_dir)]
        workers.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                        env=env))
        # Overlap the two trainings, but let the first prepare the shared dataset cache on its own:
        # two workers preparing the same file at the same moment collide in the datasets cache.
        deadline = time.monotonic() + 120
        while workers[-1].poll() is None and time.monotonic() < deadline and not _started(run_dir):
            time.sleep(0.2)
    for worker, run_dir in zip(workers, made, strict=True):
        _out, err = worker.communicate(timeout=300)
        logs = "".join(p.read_text() for p in (run_dir / "logs").glob("*.log"))
        assert worker.returncode == 0, (err + logs)[-3000:]
    (home / "ready").write_text("ok", encoding="utf-8")
    return home


def _started(run_dir: Path) -> bool:
    events = run_dir / "events.jsonl"
    return events.exists() and '"event":"started"' in events.read_text(encoding="utf-8")


@dataclass(frozen=True)
class Library:
    registry: Registry
    parent: RunRecord
    child: RunRecord


def install_library(source: Path, studio_home: Path) -> Library:
    """Copy the trained runs and registry into this test's Studio home, pointing the rows at the copies."""
    shutil.copytree(source / "runs", studio_home / "runs", dirs_exist_ok=True)
    target = studio_home / "studio.sqlite"
    with sqlite3.connect(source / "studio.sqlite") as src, sqlite3.connect(target) as dst:
        src.backup(dst)
        dst.execute("UPDATE runs SET run_dir = replace(run_dir, ?, ?)",
                    (str(source / "runs"), str(studio_home / "runs")))
    src.close()
    dst.close()
    registry = Registry(studio_home / "studio.sqlite")
    parent, child = registry.get("run-parent"), registry.get("run-child")
    assert parent is not None and child is not None
    return Library(registry, parent, child)
