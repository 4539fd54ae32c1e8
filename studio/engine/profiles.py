"""Use-case profiles (chatbot, code, ...): data files under resources/profiles, read into typed objects."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from studio.engine.errors import StudioError
from studio.engine.paths import resources_dir

DEFAULT_PROFILE = "chatbot"


class Example(BaseModel):
    model_config = ConfigDict(extra="forbid")
    input: str
    output: str


class LoraDefaults(BaseModel):
    model_config = ConfigDict(extra="forbid")
    r: int = Field(ge=1, le=1024)
    alpha: int = Field(ge=1, le=4096)
    dropout: float = Field(ge=0.0, le=0.5)
    target_modules: list[str] | str = "all-linear"


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    id: str
    name: str
    summary: str
    description: str
    data_needed: str
    example: Example
    example_prompts: list[str] = Field(min_length=1)
    system_prompt: str = ""
    lora: LoraDefaults
    epochs: float = Field(gt=0, le=20)
    learning_rate: float = Field(gt=0, le=1e-2)
    max_length_hint: int = Field(ge=64, le=131072)
    min_examples: int = Field(ge=1)
    recommended_examples: int = Field(ge=1)


ORDER = ("chatbot", "code", "summarization", "qa", "creative", "domain", "preference")


def profiles_dir() -> Path:
    return resources_dir() / "profiles"


@cache
def load_profiles() -> dict[str, Profile]:
    """All shipped profiles, in the order the wizard shows them."""
    found: dict[str, Profile] = {}
    for path in sorted(profiles_dir().glob("*.yaml")):
        try:
            profile = Profile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        except (ValidationError, yaml.YAMLError) as exc:
            raise StudioError(
                what=f"The profile file {path.name} is damaged.",
                why=str(exc).splitlines()[0],
                actions=["Reinstall Studio to restore its profile files."],
                code="profile_invalid",
            ) from None
        found[profile.id] = profile
    return dict(sorted(found.items(), key=lambda kv: ORDER.index(kv[0]) if kv[0] in ORDER else len(ORDER)))


def get_profile(profile_id: str | None) -> Profile:
    profiles = load_profiles()
    key = (profile_id or DEFAULT_PROFILE).lower()
    if key not in profiles:
        raise StudioError(
            what=f"There is no use-case profile called '{profile_id}'.",
            why=f"The profiles are: {', '.join(profiles)}.",
            actions=["Pick one of the profiles listed above.", f"Leave it out to use '{DEFAULT_PROFILE}'."],
            code="profile_unknown",
        )
    return profiles[key]
