"""Training survives its reader going away: the GUI quits, the worker's stdout pipe breaks, training goes on.

The integration test starts a worker through the Supervisor inside a parent process that then dies without
a word (as a crashed or closed GUI does), and checks the orphaned worker finishes with a full events.jsonl.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from studio.engine.events import Heartbeat
from studio.engine.runs.folders import final_adapter_dir
from studio.engine.training.sinks import EventEmitter, StreamSink
from tests.engine.training.worker_runs import losses, read_events, worker_env

PARENT = """
import os, sys, time
from pathlib import Path
from studio.engine.training.supervisor import Supervisor

run_dir = Path(sys.argv[1])
sup = Supervisor(run_dir, env={"OMP_NUM_THREADS": "2"})
sup.start()
print(sup.pid, flush=True)
events = run_dir / "events.jsonl"
while '"progress"' not in (events.read_text() if events.exists() else ""):
    time.sleep(0.1)
os._exit(0)  # the GUI is gone: the read end of the worker's stdout closes with it
"""


def test_stream_sink_switches_itself_off_when_the_reader_is_gone() -> None:
    read_fd, write_fd = os.pipe()
    os.close(read_fd)
    stream = os.fdopen(write_fd, "w", encoding="utf-8", buffering=1)
    sink = StreamSink(stream)
    emitter = EventEmitter("run", [sink])
    emitter.emit(Heartbeat, phase="training")  # must not raise BrokenPipeError
    assert sink.detached
    emitter.emit(Heartbeat, phase="training")
    emitter.close()
    stream.flush()  # the descriptor now points at the null device: nothing left to fail
    stream.close()


def test_worker_keeps_training_after_its_supervisor_dies(make_run) -> None:
    run_dir: Path = make_run("orphan", max_steps=6)
    parent = subprocess.run(
        [sys.executable, "-c", PARENT, str(run_dir)],
        capture_output=True,
        text=True,
        timeout=240,
        env=worker_env(),
        check=False,
    )
    assert parent.returncode == 0, parent.stderr
    worker_pid = int(parent.stdout.split()[0])
    deadline = time.monotonic() + 240
    records: list[dict] = []
    while time.monotonic() < deadline:
        records = read_events(run_dir)
        if records and records[-1]["event"] in {"completed", "error"}:
            break
        time.sleep(0.5)
    kinds = [r["event"] for r in records]
    assert kinds[-1] == "completed", (kinds, (run_dir / "logs" / "worker.stderr.log").read_text()[-2000:])
    assert list(losses(records)) == [1, 2, 3, 4, 5, 6]
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))
    assert (final_adapter_dir(run_dir) / "adapter_model.safetensors").is_file()
    assert worker_pid > 0
