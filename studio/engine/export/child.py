"""Run a helper process (converter, quantizer) that cancel can end at once and whose output feeds progress.

Heavy native steps run in their own process: a crash there cannot take Studio down, and stopping one
is just ending the process, which no in-process call to a C library allows.
"""

from __future__ import annotations

import queue
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass

from studio.engine.progress import Span


@dataclass(frozen=True)
class ChildResult:
    returncode: int
    tail: list[str]  # the last output lines, for error messages

    def last_error(self) -> str:
        for line in reversed(self.tail):
            if "rror" in line or "failed" in line:
                return line.strip()
        return (self.tail or [f"exit code {self.returncode}"])[-1].strip()

    @property
    def out_of_space(self) -> bool:
        return any("No space left" in line for line in self.tail)


def run_child(
    command: list[str], env: dict[str, str] | None, steps: Span, on_line: Callable[[str], None] | None = None
) -> ChildResult:
    """Run `command`, passing each output line to `on_line`; cancel (via `steps`) kills it and re-raises."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               errors="replace", env=env)
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process, lines), daemon=True).start()
    tail: list[str] = []
    try:
        while True:
            steps.check()
            try:
                line = lines.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            tail = [*tail[-29:], line]
            if on_line is not None:
                on_line(line)
        return ChildResult(process.wait(), tail)
    except BaseException:
        process.kill()
        process.wait()
        raise


def _pump(process: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    """Forward output line by line; text mode turns tqdm's carriage returns into line ends."""
    assert process.stdout is not None
    for line in process.stdout:
        lines.put(line.rstrip())
    lines.put(None)
