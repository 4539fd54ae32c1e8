"""Helpers for the training tests: a learnable chat dataset, running the real worker, reading its events."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

WORDS = ["apple", "river", "stone", "cloud", "lamp", "garden", "window", "forest", "candle", "bridge"]


def write_chat_jsonl(path: Path, rows: int = 60, seed: int = 0) -> Path:
    """Conversations with a fixed persona and answer format, of varied lengths (so length grouping matters)."""
    rng = random.Random(seed)
    lines = []
    for i in range(rows):
        a, b = rng.randint(1, 20), rng.randint(1, 20)
        extra = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 30)))
        messages = [
            {"role": "user", "content": f"What is {a} plus {b}? {extra}".strip()},
            {"role": "assistant", "content": f"Pip here! {a} plus {b} makes {a + b}. Have a nice day!"},
        ]
        if i % 3 == 0:
            messages.insert(0, {"role": "system", "content": "You are Pip, a cheerful helper."})
        lines.append(json.dumps({"messages": messages}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def worker_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "2", **extra}
    return env


def run_worker_process(run_dir: Path, timeout: float = 240, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "studio.engine.training.worker", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=worker_env(**env),
        check=False,
    )


def read_events(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines() if line.strip()]


def losses(events: list[dict]) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in events if e["event"] == "progress"}
