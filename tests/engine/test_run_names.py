"""Default names of model lines: the use case and the data, each said once."""

from __future__ import annotations

import pytest

from studio.engine.config import TrainConfig
from studio.engine.datasets import sample_path
from studio.engine.runs import default_run_name


@pytest.mark.parametrize(
    ("profile", "dataset", "expected"),
    [
        ("chatbot", "/data/Support Chats.jsonl", "chatbot-support-chats"),
        ("qa", "/data/qa-pairs.csv", "qa-pairs"),
        ("chatbot", "/data/chatbot.jsonl", "chatbot"),
        ("code", None, "code-data"),
    ],
)
def test_the_name_says_the_use_case_and_the_data_once(profile, dataset, expected):
    assert default_run_name(TrainConfig(profile=profile, dataset_path=dataset)) == expected


def test_a_profiles_sample_data_is_called_sample():
    # The sample for the chatbot profile is chatbot.jsonl: the name was "chatbot-chatbot".
    config = TrainConfig(profile="chatbot", dataset_path=str(sample_path("chatbot")))
    assert default_run_name(config) == "chatbot-sample"
