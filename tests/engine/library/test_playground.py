"""The playground engine on real tiny runs: streamed answers, cancellation, history, settings."""

from __future__ import annotations

import threading

import pytest

from studio.engine.errors import StudioError
from studio.engine.library.playground import (
    BASE_KEY,
    GenerationSettings,
    Playground,
    example_prompts,
    load_history,
    targets_for,
)


def test_base_and_two_runs_answer_the_same_prompt(library):
    playground = Playground(targets_for([library.parent, library.child]))
    chunks: list[tuple[str, str]] = []
    answers = playground.ask("What is 2 plus 3?", GenerationSettings(temperature=0.0, max_new_tokens=6),
                             lambda key, text: chunks.append((key, text)), threading.Event())
    assert list(answers) == [BASE_KEY, library.parent.id, library.child.id]
    for key, answer in answers.items():
        streamed = "".join(text for k, text in chunks if k == key)
        assert streamed and streamed.strip() == answer  # the random tiny model may answer in blank lines
    assert threading.active_count() == 1 or all(t.name != "playground-generate" for t in threading.enumerate())
    history = load_history(library.parent.run_dir)
    assert len(history) == 1 and history[0]["prompt"] == "What is 2 plus 3?"
    assert set(history[0]["answers"]) == {"Base model", "pip 1.0.0", "pip 1.1.0"}
    assert history[0]["settings"]["max_new_tokens"] == 6


def test_cancel_stops_mid_answer(library):
    playground = Playground(targets_for([library.parent], include_base=False))
    cancel = threading.Event()
    pieces: list[str] = []
    for text in playground.stream(playground.targets[0], "Hello", GenerationSettings(0.0, 1.0, 200), cancel):
        pieces.append(text)
        cancel.set()
    assert 1 <= len(pieces) <= 3  # the stopping criterion ends generation right after the flag is set
    assert all(t.name != "playground-generate" for t in threading.enumerate())


def test_bad_settings_and_run_counts_are_explained(library):
    with pytest.raises(StudioError):
        GenerationSettings(temperature=5.0)
    with pytest.raises(StudioError) as info:
        targets_for([library.parent, library.child, library.parent])
    assert info.value.code == "playground_run_count"
    assert example_prompts(library.parent)  # the Q&A profile's examples
