"""What the user chose in the wizard, as a plain dataclass saved to JSON so it survives closing the app.

No Qt and no pydantic here (the app's first screen must not pay for importing it): pages read and write
this object, and the wizard saves it after every change.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from studio.engine.paths import studio_home

log = logging.getLogger(__name__)

STATE_FILE = "wizard-state.json"
STATE_VERSION = 1
PAGES = 5
_OPTIONAL_STR = (str, type(None))
_TYPES: dict[str, tuple[type, ...]] = {
    "version": (int,),
    "page": (int,),
    "profile_id": _OPTIONAL_STR,
    "dataset_path": _OPTIONAL_STR,
    "column_mapping": (dict, type(None)),
    "model_ref": _OPTIONAL_STR,
    "overrides": (dict,),
    "advanced_view": (bool,),
    "onboarding_done": (bool,),
    "train_on": (str,),
}


@dataclass
class WizardState:
    """The user's choices; transient results (reports, plans) are recomputed, never stored."""

    version: int = STATE_VERSION
    page: int = 0
    profile_id: str | None = None
    dataset_path: str | None = None
    column_mapping: dict[str, str] | None = None
    model_ref: str | None = None  # None means the built-in model
    overrides: dict[str, Any] = field(default_factory=dict)
    advanced_view: bool = False
    onboarding_done: bool = False
    train_on: str = "here"  # "here", or the cloud provider whose GPU the review step rents ("runpod")

    @classmethod
    def from_dict(cls, data: object) -> WizardState:
        """Raises ValueError for anything that is not a state this version wrote."""
        if not isinstance(data, dict):
            raise ValueError("not a mapping")
        known = {k: v for k, v in data.items() if k in _TYPES}
        for key, value in known.items():
            if not isinstance(value, _TYPES[key]) or (isinstance(value, bool) and bool not in _TYPES[key]):
                raise ValueError(f"{key} has the wrong type")
        state = cls(**known)
        if not 0 <= state.page < PAGES or state.version != STATE_VERSION:
            raise ValueError("page or version out of range")
        return state

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: Path | None = None) -> Path:
        """Atomic write, so a crash mid-save never leaves a state file that fails to load."""
        target = path or state_path()
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2), encoding="utf-8")
        tmp.replace(target)
        return target

    @classmethod
    def load(cls, path: Path | None = None) -> WizardState:
        """The saved state, or a fresh one when there is none or it is damaged (never a start-up error)."""
        source = path or state_path()
        try:
            return cls.from_dict(json.loads(source.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError, TypeError) as exc:
            log.warning("Ignoring a damaged wizard state file %s: %s", source, exc)
            return cls()

    def reset_choices(self) -> None:
        """Start over but keep the fact that onboarding was seen."""
        fresh = WizardState(onboarding_done=self.onboarding_done)
        for item in fields(self):
            setattr(self, item.name, getattr(fresh, item.name))


def state_path() -> Path:
    return studio_home() / STATE_FILE
