"""What past runs measured on this machine, so the next time estimate starts from reality.

The planner's speed comes from FLOPs over a device's usual efficiency; on a busy laptop that can be off by
a factor of two (the first run on the sample data was planned at 9 minutes and took 16 to 21). After each
run Studio records, per machine and model, the measured seconds per real token (evaluations counted, the
way the planner counts them), the sequence length it was measured at, and how long the start (loading
the model, preparing the data) and the finish (final evaluation, saving) took. The next estimate for the
same machine, model and numeric settings uses these instead of the guesses, with a narrower range.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from studio.engine.events import Completed, Error, Eval, Event, Heartbeat, Paused, Progress, Started, Stopped
from studio.engine.hardware import HardwareProfile
from studio.engine.paths import studio_home

log = logging.getLogger(__name__)

STORE_FILE = "calibration.json"
STORE_VERSION = 1
MIN_PROGRESS = 3  # progress reports of one worker before its speed counts as measured
FIRST_PHASES = frozenset({"starting", "loading_model"})  # only a worker that has just begun says these
EVAL_COST = 1.0 / 3.0  # an evaluated token costs a third of a trained one (a forward pass only)


def machine_key(hardware: HardwareProfile) -> str:
    """The same computer gives the same key across restarts; a different GPU or CPU gives another."""
    gpu = hardware.gpu
    chip = gpu.name if gpu is not None else hardware.cpu_name
    return f"{hardware.device}|{chip}|{hardware.cpu_cores} cores"


def config_key(machine: str, config: dict[str, Any]) -> str:
    """Speeds are comparable only at the same numeric settings (precision, 4-bit, recomputation)."""
    return "|".join((
        machine, str(config.get("base_model", "")), str(config.get("precision", "")),
        str(config.get("quantization", "")), "gc" if config.get("gradient_checkpointing") else "no-gc",
    ))


@dataclass(frozen=True)
class Measurement:
    """One run's measured timing, as recorded in the store."""

    seconds_per_token: float  # per real training token, evaluations included at EVAL_COST
    tokens_per_example: float  # the mean real tokens per example it was measured at
    startup_s: float | None = None  # first event to `started`: loading the model, preparing the data
    finish_s: float | None = None  # last step to `completed`: final evaluation, scoring, saving
    runs: int = 1
    recorded_at: str = ""


@dataclass
class RunTiming:
    """Folds one run's events (live or replayed) into what the store records; only the latest worker of the
    run counts, since a resumed worker restarts its clock."""

    config: dict[str, Any] = field(default_factory=dict)
    device: str = ""
    eval_examples: int = 0
    _first_ts: datetime | None = None
    _started_ts: datetime | None = None
    _progress: list[Progress] = field(default_factory=list)
    _progress_ts: datetime | None = None
    _evals_between: int = 0
    _completed_ts: datetime | None = None
    _ended: bool = True  # no worker yet: the next event is a new worker's first

    def observe(self, event: Event) -> None:
        ts = _parse_ts(event.ts)
        if isinstance(event, Heartbeat) and event.phase in FIRST_PHASES and self._started_ts is not None:
            self._ended = True  # a new worker after one that vanished without a last word (interrupted)
        if self._ended and not isinstance(event, Completed | Stopped | Error):
            self._first_ts, self._started_ts, self._progress = ts, None, []
            self._evals_between, self._completed_ts, self._ended = 0, None, False
        if isinstance(event, Started):
            self.config, self.device, self.eval_examples = dict(event.config), event.device, event.eval_examples
            self._started_ts = ts
        elif isinstance(event, Progress):
            if self._progress and event.elapsed_s < self._progress[-1].elapsed_s:
                self._progress, self._evals_between = [], 0  # a restarted clock (a retry after out-of-memory)
            self._progress.append(event)
            self._progress_ts = ts
        elif isinstance(event, Eval) and self._progress:
            self._evals_between += 1
        elif isinstance(event, Completed):
            self._completed_ts, self._ended = ts, True
        elif isinstance(event, Stopped | Error) or (isinstance(event, Paused) and event.released):
            self._ended = True

    def measurement(self, now: str = "") -> Measurement | None:
        """None until MIN_PROGRESS reports of one worker have measured a speed."""
        window = self._progress
        if len(window) < MIN_PROGRESS or not self.config:
            return None
        first, last = window[0], window[-1]
        seconds = last.elapsed_s - first.elapsed_s
        tokens = last.tokens_seen - first.tokens_seen
        steps = last.step - first.step
        batch = _effective_batch(self.config)
        if seconds <= 0 or tokens <= 0 or steps <= 0:
            return None
        per_example = tokens / (steps * batch)
        evaluated = self._evals_between * self.eval_examples * per_example * EVAL_COST
        startup = _seconds(self._first_ts, self._started_ts)
        finish = _seconds(self._progress_ts, self._completed_ts)
        return Measurement(seconds / (tokens + evaluated), per_example, startup, finish, 1, now)


class CalibrationStore:
    """The measurements of past runs, in one JSON file in the data folder."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or studio_home() / STORE_FILE
        self._entries: dict[str, Measurement] | None = None
        self._mtime: float | None = None

    def entries(self) -> dict[str, Measurement]:
        """Read again only when the file changed, so the wizard can ask on every keystroke."""
        try:
            mtime: float | None = self.path.stat().st_mtime
        except OSError:
            mtime = None
        if self._entries is None or mtime != self._mtime:
            self._entries, self._mtime = self._read(), mtime
        return self._entries

    def lookup(self, hardware: HardwareProfile, config: dict[str, Any]) -> Measurement | None:
        return self.entries().get(config_key(machine_key(hardware), config))

    def record(self, hardware: HardwareProfile, timing: RunTiming) -> Measurement | None:
        """Keep a finished (or stopped) run's timing; runs on another device, or on several processes
        (whose clocks the planner models differently), are not recorded."""
        measured = timing.measurement(datetime.now().astimezone().isoformat(timespec="seconds"))
        if measured is None or timing.device != hardware.device or _processes(timing.config) > 1:
            return None
        key = config_key(machine_key(hardware), timing.config)
        entries = dict(self.entries())
        previous = entries.get(key)
        if previous is not None:  # the newest run counts most, an older one still steadies a noisy figure
            measured = Measurement(
                0.7 * measured.seconds_per_token + 0.3 * previous.seconds_per_token,
                measured.tokens_per_example,
                measured.startup_s if measured.startup_s is not None else previous.startup_s,
                measured.finish_s if measured.finish_s is not None else previous.finish_s,
                previous.runs + 1,
                measured.recorded_at,
            )
        entries[key] = measured
        self._write(entries)
        return measured

    def _read(self) -> dict[str, Measurement]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("version") != STORE_VERSION:
                return {}
            return {key: Measurement(**value) for key, value in data["entries"].items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning("Ignoring a damaged calibration file %s: %s", self.path, exc)
            return {}

    def _write(self, entries: dict[str, Measurement]) -> None:
        data = {"version": STORE_VERSION, "entries": {k: asdict(v) for k, v in entries.items()}}
        tmp = self.path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
            tmp.replace(self.path)
        except OSError as exc:  # a calibration is a help for the next plan; never fail a run over it
            log.warning("Could not save the run's timing to %s: %s", self.path, exc)
            return
        self._entries, self._mtime = entries, self.path.stat().st_mtime


_default: CalibrationStore | None = None


def default_store() -> CalibrationStore:
    """The store of the current data folder (a new one when STUDIO_HOME changes, as it does in tests)."""
    global _default
    path = studio_home() / STORE_FILE
    if _default is None or _default.path != path:
        _default = CalibrationStore(path)
    return _default


def _parse_ts(ts: str) -> datetime | None:
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00")) if ts else None
    except ValueError:
        return None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds()


def _effective_batch(config: dict[str, Any]) -> int:
    return max(1, int(config.get("micro_batch_size", 1)) * int(config.get("gradient_accumulation", 1))
               * _processes(config))


def _processes(config: dict[str, Any]) -> int:
    return max(1, int(config.get("num_processes", 1) or 1))
