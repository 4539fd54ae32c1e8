"""Training objectives (sft, dpo, orpo, kto) in plain language: when each suits and what data it needs.

The texts are data (resources/objectives.yaml), read into typed objects, so the CLI and the wizard explain
the choice in the same words.
"""

from __future__ import annotations

from functools import cache
from typing import get_args

import yaml
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from studio.engine.config import Objective
from studio.engine.errors import StudioError
from studio.engine.paths import resources_dir


class ObjectiveInfo(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: Objective
    name: str
    suits_when: str
    data_needed: str
    beta: str  # what beta does for this objective; empty where it has none


@cache
def load_objectives() -> dict[str, ObjectiveInfo]:
    """Every objective Studio trains, in the order they are offered."""
    path = resources_dir() / "objectives.yaml"
    try:
        items = TypeAdapter(list[ObjectiveInfo]).validate_python(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (OSError, ValidationError, yaml.YAMLError) as exc:
        raise StudioError(
            what="The file describing the training objectives is missing or damaged.",
            why=f"{path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            actions=["Reinstall Studio to restore its resource files.", "Train with the default objective (sft)."],
            code="objectives_invalid",
        ) from None
    found: dict[str, ObjectiveInfo] = {item.id: item for item in items}
    missing = set(get_args(Objective)) - set(found)
    if missing:
        raise StudioError(
            what="The file describing the training objectives is incomplete.",
            why=f"{path} says nothing about {', '.join(sorted(missing))}.",
            actions=["Reinstall Studio to restore its resource files.", "Train with the default objective (sft)."],
            code="objectives_invalid",
        )
    return found


def objective_info(objective: str) -> ObjectiveInfo:
    return load_objectives()[objective]


# The objective a dataset's kind calls for when the user chose none: SFT cannot learn from preference data.
_FOR_KIND = {"preference": "dpo", "unpaired": "kto"}


# The objectives each kind of data can train (the first is the default); KTO also takes pairs, as one good and
# one bad answer each.
_ALLOWED = {"preference": ("dpo", "orpo", "kto"), "unpaired": ("kto",)}
PREFERENCE_KINDS = frozenset(_ALLOWED)
PREFERENCE_PROFILE = "preference"  # the use case "Make answers better" (resources/profiles/preference.yaml)


def objective_for_kind(kind: str | None) -> str | None:
    """DPO for preference pairs, KTO for answers labeled good or bad; None where SFT (the default) fits."""
    return _FOR_KIND.get(kind or "")


def objectives_for_kind(kind: str | None) -> tuple[str, ...]:
    """The objectives a dataset of this kind can train with, the default first."""
    return _ALLOWED.get(kind or "", ("sft",))
