"""Test-only fault injection, parsed in this one place.

STUDIO_TEST_FAULTS holds `name=value` pairs separated by commas, e.g. `oom_at_step=2,sleep_per_step=0.3`.
Known faults:
  oom_at_step=K       raise an out-of-memory error when optimizer step K begins
  oom_above_micro_batch=M   ...but only while the micro-batch is larger than M (so a smaller batch fits)
  sleep_per_step=S    sleep S seconds after every step (gives tests time to send signals mid-run)
  sleep_while_loading=S   sleep S seconds once the model is loaded (a slow set-up, to stop it midway)
  disk_full_at_step=K     sealing a checkpoint of step K or later fails as on a full disk (ENOSPC), after the
                          Trainer has written its files: a checkpoint cut short mid-write
  events_disk_full_at_step=K  writing an event of step K or later to events.jsonl fails the same way
Unknown names are kept, so other parts of the engine can add faults without touching the parser.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field

ENV_VAR = "STUDIO_TEST_FAULTS"


@dataclass(frozen=True)
class Faults:
    values: dict[str, str] = field(default_factory=dict)

    def get_int(self, name: str) -> int | None:
        value = self.values.get(name)
        return int(value) if value is not None else None

    def get_float(self, name: str) -> float | None:
        value = self.values.get(name)
        return float(value) if value is not None else None

    def __bool__(self) -> bool:
        return bool(self.values)


def parse_faults(text: str) -> Faults:
    values = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        if name:
            values[name] = value if sep else "1"
    return Faults(values)


def active_faults() -> Faults:
    return parse_faults(os.environ.get(ENV_VAR, ""))


def raise_if_disk_full(fault: str, step: int | None) -> None:
    """The injected full disk: raise ENOSPC when fault `fault`=K is set and `step` is K or later."""
    first = active_faults().get_int(fault)
    if first is not None and step is not None and step >= first:
        raise OSError(errno.ENOSPC, f"No space left on device (injected by a test: {fault}={first})")
