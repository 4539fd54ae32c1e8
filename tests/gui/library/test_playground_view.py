"""Chat in the playground with the real built-in model like a person: type, Send, watch both answers stream
in, go on for several turns, correct an answer into the dataset, export, stop."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt

from studio.engine.library.conversations import corrected_dataset, load_conversations
from studio.engine.library.playground import BASE_KEY
from studio.library.playground_view import PlaygroundView


@pytest.fixture
def view(qtbot):
    view = PlaygroundView()
    qtbot.addWidget(view, before_close_func=lambda v: v.shutdown())
    view.resize(1366, 768)
    view.show()
    return view


def open_runs(view, qtbot, runs) -> None:
    """Open runs as the library does; their files are read in the background ("Loading…" meanwhile)."""
    with qtbot.waitSignal(view.loaded, timeout=30000):
        view.set_runs(runs)


def say(view, qtbot, text: str, timeout: int = 120000) -> dict[str, str]:
    """Type a message, press Send and wait for every model's answer."""
    qtbot.keyClicks(view.prompt, text)
    with qtbot.waitSignal(view.answered, timeout=timeout) as done:
        qtbot.mouseClick(view.send_button, Qt.MouseButton.LeftButton)
        assert not view.send_button.isEnabled() and view.stop_button.isEnabled()
    assert view.send_button.isEnabled() and not view.stop_button.isEnabled()
    return done.args[0]


def quick(view, qtbot, tokens: int = 4) -> None:
    view.temperature.setValue(0.0)
    view.max_tokens.clear()
    qtbot.keyClicks(view.max_tokens, str(tokens))
    assert view.max_tokens.value() == tokens


@pytest.mark.slow
def test_a_three_turn_conversation_keeps_each_models_context(view, builtin_run, builtin_model_dir, qtbot,
                                                            tmp_path, monkeypatch):
    open_runs(view, qtbot, [builtin_run])
    assert view.examples.count() > 1  # the chatbot profile's example prompts
    quick(view, qtbot)
    qtbot.keyClicks(view.system_prompt, "You are Pip, a tour guide.")
    streamed: list[int] = []
    view.runner.partialResult.connect(lambda _value: streamed.append(1))
    first = say(view, qtbot, "What is the capital of France?")
    assert set(first) == {"Base model", "pip-smol 1.0.0"}
    assert view.answer_text(BASE_KEY) and view.answer_text(builtin_run.id)
    assert len(streamed) >= 4  # token by token, not one block per model
    say(view, qtbot, "And of Italy?")
    view.system_prompt.clear()
    qtbot.keyClicks(view.system_prompt, "You are Pip. Answer briefly.")  # applies from the next message
    third = say(view, qtbot, "Which did I ask about first?")

    for key in (BASE_KEY, builtin_run.id):
        sent = view.playground.sent[key]  # what the third answer was generated from
        assert sent[0] == {"role": "system", "content": "You are Pip. Answer briefly."}
        assert [m["content"] for m in sent if m["role"] == "user"] == [
            "What is the capital of France?", "And of Italy?", "Which did I ask about first?"]
        own = [m["content"] for m in view.conversation.sides[key] if m["role"] == "assistant"]
        assert [m["content"] for m in sent if m["role"] == "assistant"] == own[:2]  # its own answers
        assert "What is the capital of France?" in view.transcript_text(key)
    assert third == {"Base model": view.answer_text(BASE_KEY), "pip-smol 1.0.0": view.answer_text(builtin_run.id)}
    assert view.answer_text(BASE_KEY) != view.answer_text(builtin_run.id) or \
        view.conversation.sides[BASE_KEY] != view.conversation.sides[builtin_run.id]  # the adapter changes it

    saved = load_conversations(builtin_run.run_dir)  # saved with the run as it goes
    assert len(saved) == 1 and len(saved[0].sides[builtin_run.id]) == 6
    assert view.conversations.count() == 1 and "capital of France" in view.conversations.item(0).text()

    out = tmp_path / "chats.jsonl"
    from PySide6.QtWidgets import QFileDialog

    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *_args, **_kw: (str(out), ""))
    qtbot.mouseClick(view.export_button, Qt.MouseButton.LeftButton)  # the Save dialog answers `out`
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [m["role"] for m in rows[0]["messages"]] == ["system"] + ["user", "assistant"] * 3
    assert rows[0]["messages"][1]["content"] == "What is the capital of France?"
    assert str(out) in view.banner.body.text()

    # Too long for the model: the oldest turns are left out, and the transcript says so.
    from transformers import AutoTokenizer

    from studio.engine.library.playground import count_tokens

    tokenizer = AutoTokenizer.from_pretrained(builtin_model_dir)
    newest = [{"role": "system", "content": "You are Pip. Answer briefly."}, {"role": "user", "content": "Bye"}]
    view.playground.context_tokens = count_tokens(tokenizer, newest) + 4 + 2
    say(view, qtbot, "Bye")
    column = view._columns[builtin_run.id]
    assert column.trim_note.isVisible() and "6 oldest messages" in column.trim_note.text()
    assert [m["content"] for m in view.playground.sent[builtin_run.id] if m["role"] == "user"] == ["Bye"]

    # A new conversation starts empty; the saved one opens again.
    qtbot.mouseClick(view.new_button, Qt.MouseButton.LeftButton)
    assert "capital of France" not in view.transcript_text(builtin_run.id)
    item = view.conversations.item(0)
    qtbot.mouseClick(view.conversations.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.conversations.visualItemRect(item).center())
    assert "capital of France" in view.transcript_text(builtin_run.id)
    assert view.system_prompt.toPlainText() == "You are Pip. Answer briefly."


@pytest.mark.slow
def test_a_corrected_answer_goes_into_a_copy_of_the_dataset(view, builtin_run, qtbot, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the run was trained on pip.jsonl, relative to here
    source = tmp_path / "pip.jsonl"
    source.write_text(json.dumps({"messages": [{"role": "user", "content": "Hi"},
                                               {"role": "assistant", "content": "Hello, I am Pip."}]}) + "\n")
    open_runs(view, qtbot, [builtin_run])
    quick(view, qtbot)
    column = view._columns[builtin_run.id]
    assert not column.correct_button.isEnabled()  # nothing to correct yet
    qtbot.keyClicks(view.prompt, "Who are you?")
    with qtbot.waitSignal(view.answered, timeout=120000):
        qtbot.keyClick(view.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)  # Ctrl+Enter sends
    qtbot.mouseClick(column.correct_button, Qt.MouseButton.LeftButton)
    assert view.correction.isVisible() and view.correction_edit.toPlainText() == view.answer_text(builtin_run.id)
    view.correction_edit.clear()
    qtbot.keyClicks(view.correction_edit, "I am Pip, your guide.")
    qtbot.mouseClick(view.add_correction_button, Qt.MouseButton.LeftButton)

    copy = corrected_dataset(builtin_run.run_dir)
    lines = copy.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and json.loads(lines[-1])["messages"][-2:] == [
        {"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "I am Pip, your guide."}]
    assert source.read_text().count("\n") == 1  # the original is untouched
    assert not view.correction.isVisible()
    assert str(copy) in view.banner.body.text() and "Continue training" in view.banner.body.text()
    assert "I am Pip, your guide." in view.transcript_text(builtin_run.id)
    assert load_conversations(builtin_run.run_dir)[0].last_answer(builtin_run.id) == "I am Pip, your guide."


@pytest.mark.slow
def test_stop_ends_the_answer_and_keeps_what_was_written(view, builtin_run, qtbot):
    open_runs(view, qtbot, [builtin_run])
    quick(view, qtbot, tokens=400)
    qtbot.keyClicks(view.prompt, "Tell me a long story about a dragon.")
    pieces: list[object] = []
    view.runner.partialResult.connect(pieces.append)
    with qtbot.waitSignal(view.answered, timeout=120000):
        qtbot.mouseClick(view.send_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: len(pieces) >= 3, timeout=60000)  # the window is responsive while it writes
        qtbot.mouseClick(view.stop_button, Qt.MouseButton.LeftButton)
    assert "Stopped" in view.status.text() and view.send_button.isEnabled()
    answer = view.answer_text(BASE_KEY)
    assert answer and len(answer.split()) < 200  # far fewer than 400 tokens
    assert view.conversation.sides[BASE_KEY][-1]["content"] == answer
    assert builtin_run.id not in view.conversation.sides  # Stop came before the tuned model began


def test_empty_prompt_and_unfinished_runs_are_explained(view, library, qtbot):
    open_runs(view, qtbot, [library.parent])
    qtbot.mouseClick(view.send_button, Qt.MouseButton.LeftButton)
    assert view.banner.isVisible() and "prompt" in view.banner.title.text()
    import shutil

    shutil.rmtree(library.child.run_dir / "final")
    shutil.rmtree(library.child.run_dir / "checkpoints")  # stopped before its first checkpoint
    open_runs(view, qtbot, [library.child])
    assert "nothing trained to use yet" in view.banner.title.text() and not view.send_button.isEnabled()


def test_every_control_is_named_and_settings_are_explained(view, library, qtbot):
    from tests.gui.test_screen_reader_names import nameless_controls

    open_runs(view, qtbot, [library.parent])
    assert nameless_controls(view) == []
    for spin in (view.temperature, view.top_p, view.max_tokens):
        assert spin.toolTip() and spin.accessibleName()
    assert view.system_box.toolTip()  # the glossary's "system prompt"


def test_opening_runs_reads_their_files_off_the_gui_thread_while_it_says_loading(view, library, qtbot,
                                                                                 monkeypatch):
    """The adapter folders, the profile and the saved conversations are read on the worker thread, with
    "Loading…" shown meanwhile; opening a saved conversation afterwards reads nothing on the GUI thread."""
    import threading

    import studio.library.playground_view as playground_view
    from studio.engine.library.conversations import Conversation, save_conversation

    save_conversation(library.parent.run_dir, Conversation(
        system_prompt="Be brief.", sides={library.parent.id: [{"role": "user", "content": "What is 2 plus 3?"},
                                                               {"role": "assistant", "content": "Pip says 5."}]}))
    read_in: list[tuple[str, threading.Thread]] = []
    release = threading.Event()
    real = {name: getattr(playground_view, name) for name in ("targets_for", "example_prompts", "load_conversations")}

    def watched(name):
        def read(*args, **kwargs):
            read_in.append((name, threading.current_thread()))
            if name == "targets_for":
                release.wait(10)
            return real[name](*args, **kwargs)
        return read

    for name in real:
        monkeypatch.setattr(playground_view, name, watched(name))
    view.set_runs([library.parent])
    try:
        qtbot.waitUntil(lambda: bool(read_in), timeout=10000)
        assert view.loading and view.status.text() == "Loading…" and view.title.text() == "Playground: loading…"
        assert not view.send_button.isEnabled() and view.conversations.count() == 0
    finally:
        with qtbot.waitSignal(view.loaded, timeout=20000):
            release.set()
    assert {name for name, _thread in read_in} == set(real)
    assert all(thread is not threading.main_thread() for _name, thread in read_in)
    assert view.status.text() == "" and view.send_button.isEnabled() and view.examples.count() > 1
    assert view.title.text() == f"Playground: {library.parent.name} {library.parent.version}"
    assert view.conversations.count() == 1 and "What is 2 plus 3?" in view.conversations.item(0).text()

    read_in.clear()
    item = view.conversations.item(0)
    qtbot.mouseClick(view.conversations.viewport(), Qt.MouseButton.LeftButton,
                     pos=view.conversations.visualItemRect(item).center())
    assert "Pip says 5." in view.transcript_text(library.parent.id)
    assert view.system_prompt.toPlainText() == "Be brief."
    assert read_in == []  # from memory, not from the run folder
