"""plan_for: the one planning workflow, on the built-in model and a real sample dataset."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.engine.datasets import DatasetOptions, sample_path, validate_file
from studio.engine.errors import StudioError
from studio.engine.planner import plan_for
from studio.engine.progress import Callbacks


def test_plans_from_a_file_measured_with_the_models_tokenizer(builtin_model_dir: Path, machine_24gb):
    seen: list[tuple[str, float]] = []
    planned = plan_for("builtin", "chatbot", sample_path("chatbot"), hardware=machine_24gb,
                       task=Callbacks(lambda message, fraction: seen.append((message, fraction))))
    assert planned.stats is not None and planned.stats.n_examples > 10 and planned.notes == []
    assert planned.plan.config.dataset_path == str(sample_path("chatbot").resolve())
    assert planned.plan.config.profile == "chatbot" and planned.hardware is machine_24gb
    assert planned.facts.path is not None and Path(planned.facts.path) == builtin_model_dir
    fractions = [fraction for _message, fraction in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("dataset" in message.lower() for message, _fraction in seen)


def test_a_checked_report_is_used_as_it_is(builtin_model_dir: Path, machine_24gb, tmp_path: Path):
    copy = tmp_path / "chat.jsonl"
    copy.write_bytes(sample_path("chatbot").read_bytes())
    report = validate_file(copy, DatasetOptions(tokenizer_path=builtin_model_dir, profile="chatbot"))
    copy.unlink()  # the wizard has checked the file already: planning must not read it again
    planned = plan_for(None, "chatbot", report, hardware=machine_24gb)
    assert report.stats is not None and planned.stats is not None
    assert planned.stats.n_examples == report.stats.examples and planned.stats.p90_tokens == report.stats.p90


def test_an_unusable_file_is_refused_with_its_reason(builtin_model_dir: Path, machine_24gb, tmp_path: Path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "only a prompt"}\n', encoding="utf-8")
    with pytest.raises(StudioError) as caught:
        plan_for("builtin", "chatbot", bad, hardware=machine_24gb)
    assert caught.value.actions, caught.value


def test_a_stop_request_ends_planning(machine_24gb):
    from studio.engine.progress import Cancelled

    with pytest.raises(Cancelled):
        plan_for("builtin", "chatbot", hardware=machine_24gb, task=Callbacks(stop_requested=lambda: True))


@pytest.fixture
def machine_24gb(make_machine):
    return make_machine("cpu_24gb")
