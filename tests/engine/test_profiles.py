"""Every shipped use-case profile is valid, complete, and usable by the planner."""

from __future__ import annotations

import pytest
import yaml

from studio.engine.config import TrainConfig
from studio.engine.errors import StudioError
from studio.engine.profiles import ORDER, Profile, get_profile, load_profiles, profiles_dir


def test_all_six_profiles_ship_in_wizard_order():
    assert tuple(load_profiles()) == ORDER


@pytest.mark.parametrize("path", sorted(profiles_dir().glob("*.yaml")), ids=lambda p: p.stem)
def test_every_profile_file_is_valid_and_sensible(path):
    profile = Profile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert profile.id == path.stem
    assert profile.min_examples <= profile.recommended_examples
    assert profile.example.input and profile.example.output and profile.example_prompts
    # Its LoRA settings and learning rate are values a TrainConfig accepts.
    TrainConfig(lora_r=profile.lora.r, lora_alpha=profile.lora.alpha, lora_dropout=profile.lora.dropout,
                learning_rate=profile.learning_rate, num_epochs=profile.epochs)


def test_every_profile_plans_with_the_builtin_model(builtin_model_dir):
    from studio.engine.hardware import probe
    from studio.engine.models.facts import read_model_facts
    from studio.engine.planner import plan

    facts, hardware = read_model_facts(builtin_model_dir), probe()
    for profile in load_profiles().values():
        result = plan(hardware, facts, profile)
        assert result.config.profile == profile.id and result.explanations


def test_lookup_is_case_insensitive_defaults_to_chatbot_and_rejects_unknowns():
    assert get_profile("QA").id == "qa"
    assert get_profile(None).id == "chatbot"
    with pytest.raises(StudioError) as info:
        get_profile("astrology")
    assert "chatbot" in info.value.why
