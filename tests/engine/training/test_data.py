"""Assistant-only loss on real tokens: only the answers (and their end-of-turn marker) are learned from."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.engine.training.data import tokenize_conversation, tokenize_text


@pytest.fixture(scope="module")
def tokenizer(builtin_model_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(builtin_model_dir)


def _learned_text(tokenizer, encoded) -> str:
    return tokenizer.decode(
        [t for t, m in zip(encoded["input_ids"], encoded["assistant_masks"], strict=True) if m]
    )


def test_only_assistant_turns_are_learned(tokenizer):
    messages = [
        {"role": "system", "content": "You are Pip."},
        {"role": "user", "content": "Hello there"},
        {"role": "assistant", "content": "Pip here! Hi."},
        {"role": "user", "content": "And again?"},
        {"role": "assistant", "content": "Pip again!"},
    ]
    encoded = tokenize_conversation(tokenizer, messages, assistant_only=True)
    full = tokenizer.decode(encoded["input_ids"])
    assert full == tokenizer.apply_chat_template(messages, tokenize=False)
    learned = _learned_text(tokenizer, encoded)
    assert "Pip here! Hi." in learned and "Pip again!" in learned
    assert "Hello there" not in learned and "And again?" not in learned and "You are Pip." not in learned
    assert "<|im_start|>assistant" not in learned  # the prompt header is the model's cue, not its answer
    assert learned.count("<|im_end|>") == 2  # it learns to stop after each answer
    assert 0 < sum(encoded["assistant_masks"]) < len(encoded["input_ids"])


def test_all_tokens_learned_when_assistant_only_is_off(tokenizer):
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    encoded = tokenize_conversation(tokenizer, messages, assistant_only=False)
    assert all(encoded["assistant_masks"])


def test_plain_text_is_learned_entirely_and_ends_with_eos(tokenizer):
    encoded = tokenize_text(tokenizer, "Sourdough needs a lively starter.")
    assert encoded["input_ids"][-1] == tokenizer.eos_token_id
    assert all(encoded["assistant_masks"])
