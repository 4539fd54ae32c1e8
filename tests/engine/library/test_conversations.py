"""Playground conversations on real tiny runs: every model keeps its own history, trimmed to what it can read,
saved with the run, exported as a training file, and a corrected answer goes into a copy of the dataset."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from studio.engine.errors import StudioError
from studio.engine.library.conversations import (
    Conversation,
    add_correction,
    corrected_dataset,
    export_jsonl,
    fit_to_context,
    load_conversations,
)
from studio.engine.library.playground import BASE_KEY, GenerationSettings, Playground, targets_for
from studio.engine.runs.registry import Registry

QUICK = GenerationSettings(temperature=0.0, max_new_tokens=3)


def _ask(playground: Playground, conversation: Conversation, prompt: str) -> dict[str, str]:
    return playground.chat(conversation, prompt, QUICK, lambda _key, _text: None, threading.Event()).answers


def test_three_turns_keep_each_models_own_history(library):
    playground = Playground(targets_for([library.parent]))
    conversation = Conversation(system_prompt="You are Pip.")
    for prompt in ("What is 1 plus 2?", "And 3 plus 4?", "What did I ask first?"):
        answers = _ask(playground, conversation, prompt)
    assert set(answers) == {BASE_KEY, library.parent.id}
    for key in (BASE_KEY, library.parent.id):
        sent = playground.sent[key]  # what the third answer was generated from
        assert sent[0] == {"role": "system", "content": "You are Pip."}
        assert [m["content"] for m in sent if m["role"] == "user"] == [
            "What is 1 plus 2?", "And 3 plus 4?", "What did I ask first?"]
        assert [m["content"] for m in sent if m["role"] == "assistant"] == [
            m["content"] for m in conversation.sides[key][:4] if m["role"] == "assistant"]  # its own answers
        assert len(conversation.sides[key]) == 6
    assert conversation.labels == {BASE_KEY: "Base model", library.parent.id: "pip 1.0.0"}

    playground.save(conversation)
    saved = load_conversations(library.parent.run_dir)
    assert [c.id for c in saved] == [conversation.id] and saved[0].title == "What is 1 plus 2?"
    out = library.parent.run_dir.parent / "export.jsonl"
    assert export_jsonl(saved, library.parent.id, out) == 1
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [m["role"] for m in rows[0]["messages"]] == ["system"] + ["user", "assistant"] * 3


def test_older_turns_are_dropped_when_the_context_is_full(library):
    playground = Playground(targets_for([library.parent], include_base=False))
    conversation = Conversation()
    trimmed: list[tuple[str, int]] = []
    _ask(playground, conversation, "First question about something long " * 3)
    playground.context_tokens = 40 + QUICK.max_new_tokens  # room for the newest prompt, not the first turn
    turn = playground.chat(conversation, "Second?", QUICK, lambda _k, _t: None, threading.Event(),
                           on_trimmed=lambda key, dropped: trimmed.append((key, dropped)))
    assert turn.dropped == {library.parent.id: 2} and trimmed == [(library.parent.id, 2)]
    assert [m["content"] for m in playground.sent[library.parent.id]] == ["Second?"]
    assert len(conversation.sides[library.parent.id]) == 4  # the conversation itself keeps everything


def test_the_context_guard_keeps_the_system_prompt_and_refuses_a_prompt_too_long():
    def count(messages):
        return sum(len(m["content"]) for m in messages)

    messages = [{"role": "system", "content": "S"}, {"role": "user", "content": "aaaa"},
                {"role": "assistant", "content": "bbbb"}, {"role": "user", "content": "cc"}]
    assert fit_to_context(messages, count, 5) == ([messages[0], messages[3]], 2)
    with pytest.raises(StudioError) as info:
        fit_to_context(messages, count, 2)
    assert info.value.code == "prompt_too_long"


def test_stop_before_a_model_starts_leaves_no_trace_of_the_turn(library):
    playground = Playground(targets_for([library.parent]))
    conversation = Conversation()
    cancel = threading.Event()
    cancel.set()
    turn = playground.chat(conversation, "Hello", QUICK, lambda _k, _t: None, cancel)
    assert turn.cancelled and turn.answers == {} and conversation.sides == {}
    with pytest.raises(StudioError):
        playground.chat(conversation, "   ", QUICK, lambda _k, _t: None, threading.Event())


def test_a_corrected_answer_goes_into_a_copy_the_next_version_trains_on(library, studio_home):
    run = library.parent
    source = Path(run.dataset or "")
    before = source.read_bytes()
    playground = Playground(targets_for([run], include_base=False))
    conversation = Conversation()
    _ask(playground, conversation, "What is 2 plus 2?")
    copy = add_correction(run.run_dir, run.dataset, conversation, run.id, "Pip says 4.")
    assert copy == corrected_dataset(run.run_dir) and source.read_bytes() == before  # the original is untouched
    lines = copy.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(before.decode().splitlines()) + 1
    assert json.loads(lines[-1]) == {"messages": [{"role": "user", "content": "What is 2 plus 2?"},
                                                  {"role": "assistant", "content": "Pip says 4."}]}
    assert conversation.last_answer(run.id) == "Pip says 4."
    _parent, config = Registry().continue_config(run.id)
    assert Path(config.dataset_path) == copy
    with pytest.raises(StudioError) as info:
        add_correction(run.run_dir, run.dataset, conversation, run.id, "  ")
    assert info.value.code == "correction_empty"
