"""new_run, the one way a run is created, and the default names of model lines (use case and data, said once)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.datasets import sample_path
from studio.engine.runs.creation import default_run_name, new_run
from studio.engine.runs.folders import CONFIG_FILE, load_run_config
from studio.engine.runs.registry import Registry


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


def test_a_new_run_keeps_its_settings_in_one_place(tmp_path: Path):
    registry = Registry(tmp_path / "studio.sqlite")
    config = TrainConfig(profile="qa", dataset_path="/data/qa-pairs.csv", learning_rate=3e-4)
    record = new_run(registry, config)
    assert record.name == "qa-pairs" and record.version == "1.0.0" and record.status == "queued"
    assert load_run_config(record.run_dir) == config
    with sqlite3.connect(registry.path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    assert "config" not in columns  # the registry indexes; config.json is the only copy
    settings = record.run_dir / CONFIG_FILE
    edited = {**json.loads(settings.read_text(encoding="utf-8")), "learning_rate": 1e-4}
    settings.write_text(json.dumps(edited), encoding="utf-8")
    assert registry.get(record.id).config["learning_rate"] == 1e-4


def test_a_folder_made_elsewhere_is_registered_under_its_own_name(tmp_path: Path):
    registry = Registry(tmp_path / "studio.sqlite")
    config = TrainConfig(profile="chatbot", dataset_path="/data/chats.jsonl")
    parent = new_run(registry, config)
    child = new_run(registry, config.updated(learning_rate=1e-4), parent.name, parent_id=parent.id,
                    folder=tmp_path / "by-hand")
    assert child.id == "by-hand" and child.run_dir == tmp_path / "by-hand" and child.parent_id == parent.id
    assert child.version == "1.0.1" and load_run_config(child.run_dir).learning_rate == 1e-4
