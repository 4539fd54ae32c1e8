"""Wizard state: saved as JSON under the Studio home, restored as-is, and never a start-up error."""

from __future__ import annotations

from studio.engine.paths import studio_home
from studio.wizard.state import WizardState, state_path


def test_round_trip():
    state = WizardState(page=3, profile_id="qa", dataset_path="/data/x.jsonl", overrides={"lora_r": 8})
    path = state.save()
    assert path == state_path() and path.parent == studio_home()
    assert WizardState.load() == state


def test_missing_or_damaged_file_gives_a_fresh_state():
    assert WizardState.load() == WizardState()
    state_path().write_text("{not json", encoding="utf-8")
    assert WizardState.load() == WizardState()
    state_path().write_text('{"page": 99}', encoding="utf-8")
    assert WizardState.load() == WizardState()


def test_reset_keeps_onboarding_flag():
    state = WizardState(page=2, profile_id="code", onboarding_done=True)
    state.reset_choices()
    assert state == WizardState(onboarding_done=True)
