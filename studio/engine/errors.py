"""Plain-language errors: every failure says what happened, why, and what to do next.

Engine code raises a StudioError (or a subclass); the CLI prints it without a traceback and exits with
its code, the worker turns it into an `error` event, and the GUI shows it in a dialog.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes shared by the CLI and the training worker."""

    OK = 0
    ERROR = 1
    DATASET_UNUSABLE = 2
    OUT_OF_MEMORY = 3
    MODEL_NOT_FOUND = 4
    STOPPED = 130


@dataclass
class StudioError(Exception):
    """A failure a person can act on."""

    what: str
    why: str = ""
    actions: list[str] = field(default_factory=list)
    code: str = "error"
    exit_code: ExitCode = ExitCode.ERROR

    def __post_init__(self) -> None:
        super().__init__(self.what)

    def __str__(self) -> str:
        return self.render()

    def render(self) -> str:
        lines = [self.what]
        if self.why:
            lines.append(f"Why: {self.why}")
        if self.actions:
            lines.append("What you can do:")
            lines.extend(f"  - {action}" for action in self.actions)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "message": self.what,
            "hint": self.why,
            "actions": list(self.actions),
            "exit_code": int(self.exit_code),
        }


def model_not_found(model: str, why: str) -> StudioError:
    return StudioError(
        what=f"Studio could not find the model '{model}'.",
        why=why,
        actions=[
            "Check the spelling of the model name or folder.",
            "Run `studio models` to see the models available on this machine.",
            "Use the built-in model: leave the model out or pass `--model builtin`.",
        ],
        code="model_not_found",
        exit_code=ExitCode.MODEL_NOT_FOUND,
    )
