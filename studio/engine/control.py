"""Control commands sent to the worker as JSON lines on its stdin (or dropped in RUN_DIR/control/)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

Command = Literal[
    "pause",  # finish the current optimizer step and wait, model kept in memory
    "pause_release",  # checkpoint and exit, freeing all memory; resume starts a new worker
    "resume",  # continue after "pause"
    "stop",  # checkpoint and exit with code 130
    "checkpoint",  # save a checkpoint now
    "anomaly_action",  # answer to an anomaly in "ask" mode; args: {"action": ...}
]
COMMANDS: frozenset[str] = frozenset(get_args(Command))


@dataclass(frozen=True)
class ControlCommand:
    command: Command
    args: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"command": self.command, "args": self.args}, separators=(",", ":"))


def parse_command(line: str) -> ControlCommand | None:
    """Parse one line; None for anything that is not a known command (it is ignored, never fatal)."""
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("command") not in COMMANDS:
        return None
    args = data.get("args") or {}
    return ControlCommand(command=data["command"], args=args if isinstance(args, dict) else {})
