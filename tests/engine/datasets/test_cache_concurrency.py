"""Two runs preparing the same file at the same moment: one prepares, the other waits and reuses it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

PREPARE = """
import sys, time
from pathlib import Path
from studio.engine.datasets import prepare_dataset
from studio.engine.progress import Callbacks

go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.01)
messages = []
prepared = prepare_dataset(sys.argv[1], task=Callbacks(lambda text, _share: messages.append(text)))
reused = any("unchanged" in text for text in messages)
print(prepared.folder, len(prepared.train), "reused" if reused else "built")
"""


def test_two_processes_prepare_the_same_file_at_once(tmp_path: Path) -> None:
    data = tmp_path / "chat.jsonl"
    rows = [
        {"messages": [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": f"Answer {i}."}]}
        for i in range(400)
    ]
    data.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    go = tmp_path / "go"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", PREPARE, str(data), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    time.sleep(3)  # both are importing and then waiting on the same start signal
    go.touch()
    results = []
    for worker in workers:
        out, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err[-3000:]
        results.append(out.split())
    assert results[0][:2] == results[1][:2]  # the same folder, the same number of examples
    assert sorted(result[2] for result in results) == ["built", "reused"]
    folder = Path(results[0][0])
    assert (folder / "COMPLETE").is_file()
    assert not [p for p in folder.parent.iterdir() if ".partial-" in p.name]
