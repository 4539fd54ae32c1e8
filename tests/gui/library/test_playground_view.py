"""Chat in the playground with the real built-in model: type, Send, watch both answers stream in."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from studio.engine.library.playground import BASE_KEY, load_history
from studio.library.playground_view import PlaygroundView


@pytest.fixture
def view(qtbot):
    view = PlaygroundView()
    qtbot.addWidget(view, before_close_func=lambda v: v.shutdown())
    view.resize(1100, 700)
    view.show()
    return view


@pytest.mark.slow
def test_base_and_tuned_answer_side_by_side(view, builtin_run, qtbot):
    view.set_runs([builtin_run])
    assert view.examples.count() > 1  # the chatbot profile's example prompts
    view.temperature.setValue(0.0)
    view.max_tokens.setValue(8)
    qtbot.keyClicks(view.prompt, "What is the capital of France?")
    streamed: list[int] = []
    view.runner.partialResult.connect(lambda _value: streamed.append(1))
    with qtbot.waitSignal(view.answered, timeout=120000) as done:
        qtbot.mouseClick(view.send_button, Qt.MouseButton.LeftButton)
        assert not view.send_button.isEnabled() and view.stop_button.isEnabled()
    base, tuned = view.answer_text(BASE_KEY), view.answer_text(builtin_run.id)
    assert "Paris" in base  # the real model knows it
    assert tuned.strip() and tuned != base  # the adapter changes the answer
    assert len(streamed) >= 4  # token by token, not one block per model
    assert done.args[0] == {"Base model": base.strip(), "pip-smol 1.0.0": tuned.strip()}
    assert view.send_button.isEnabled() and not view.stop_button.isEnabled()
    history = load_history(builtin_run.run_dir)
    assert [entry["prompt"] for entry in history] == ["What is the capital of France?"]
    assert view.history.count() == 1


def test_empty_prompt_and_unfinished_runs_are_explained(view, library, qtbot):
    view.set_runs([library.parent])
    qtbot.mouseClick(view.send_button, Qt.MouseButton.LeftButton)
    assert view.banner.isVisible() and "prompt" in view.banner.title.text()
    import shutil

    shutil.rmtree(library.child.run_dir / "final")
    shutil.rmtree(library.child.run_dir / "checkpoints")  # stopped before its first checkpoint
    view.set_runs([library.child])
    assert "nothing trained to use yet" in view.banner.title.text() and not view.send_button.isEnabled()
