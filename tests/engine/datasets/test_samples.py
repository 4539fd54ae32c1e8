"""The shipped sample datasets: one per profile, each clean, each exercising a different reader and layout."""

from __future__ import annotations

import pytest

from studio.engine.datasets import SAMPLE_DATASETS, DatasetOptions, iter_examples, sample_path, validate_file
from studio.engine.errors import StudioError
from studio.engine.profiles import load_profiles

LAYOUTS = {
    "chatbot": ("jsonl", "openai"),
    "code": ("jsonl", "alpaca"),
    "summarization": ("jsonl", "prompt_completion"),
    "qa": ("csv", "qa"),
    "creative": ("jsonl", "sharegpt"),
    "domain": ("txt", "text"),
    "preference": ("jsonl", "preference"),
}


def test_every_profile_has_a_sample():
    assert set(SAMPLE_DATASETS) == set(load_profiles())


@pytest.mark.parametrize("profile", sorted(SAMPLE_DATASETS))
def test_sample_is_clean_for_its_profile(profile):
    report = validate_file(sample_path(profile), DatasetOptions(profile=profile), use_cache=False)
    assert report.usable, report.render()
    assert not report.warnings and not report.errors, report.render()
    assert (report.format, report.schema) == LAYOUTS[profile]
    assert report.rows_usable >= load_profiles()[profile].min_examples


def test_chatbot_sample_teaches_a_consistent_persona():
    examples = list(iter_examples(sample_path("chatbot")))
    assert len(examples) >= 300
    answers = [m["content"] for e in examples for m in e["messages"] if m["role"] == "assistant"]
    assert all(answer.startswith("Pip here! ") for answer in answers)
    assert all(answer.splitlines()[-1].startswith("Tip: ") and answer.count("\n") == 1 for answer in answers)
    assert max(len(answer) for answer in answers) < 400  # short answers keep CPU training fast
    with_system = sum(1 for e in examples if e["messages"][0]["role"] == "system")
    assert 0 < with_system < len(examples)


def test_preference_sample_prefers_pip_over_the_flat_answer():
    examples = list(iter_examples(sample_path("preference")))
    assert len(examples) >= load_profiles()["preference"].recommended_examples // 3
    for example in examples:
        chosen, rejected = example["chosen"][-1]["content"], example["rejected"][-1]["content"]
        assert chosen.startswith("Pip here! ") and "Tip: " in chosen
        assert not rejected.startswith("Pip here!") and chosen != rejected


def test_unknown_sample_is_a_clear_error():
    with pytest.raises(StudioError) as caught:
        sample_path("poetry")
    assert caught.value.code == "sample_unknown"
