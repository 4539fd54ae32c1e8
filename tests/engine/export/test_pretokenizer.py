"""A BPE tokenizer llama.cpp's converter does not recognise: its pre-tokenizer is mapped and proven."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.engine.export.gguf import convert_to_gguf
from studio.engine.export.pretokenizer import candidates, signature, tokenization_agreement
from studio.engine.export.tokenization import SAMPLE_TEXTS
from studio.engine.progress import Callbacks, Span


def test_the_definition_is_read_from_tokenizer_json(tmp_path: Path) -> None:
    # Digits one by one, then byte-level with the GPT-2 regex: llama.cpp's 'smollm' first.
    definition = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True}, {"type": "ByteLevel", "use_regex": True}]}
    assert signature(definition) == ("Digits:individual", "ByteLevel:regex")
    (tmp_path / "tokenizer.json").write_text(json.dumps({"pre_tokenizer": definition}), encoding="utf-8")
    assert candidates(tmp_path) == ["smollm", "gpt-2", "llama-bpe", "qwen2"]


def test_a_folder_without_tokenizer_json_still_gets_the_common_candidates(tmp_path: Path) -> None:
    assert candidates(tmp_path) == ["gpt-2", "smollm", "llama-bpe", "qwen2"]


@pytest.mark.slow
def test_a_qwen2_model_with_the_smollm2_tokenizer_converts_with_a_proven_pretokenizer(
    family_models, tmp_path: Path
) -> None:
    from transformers import AutoTokenizer

    model = family_models.path("qwen2")  # Qwen2-shaped, carrying SmolLM2's tokenizer: not in llama.cpp's list
    messages: list[str] = []
    steps = Span(Callbacks(lambda message, _f: messages.append(message)))
    out = convert_to_gguf(model, tmp_path / "qwen2.gguf", "f16", steps)
    assert any("trying llama.cpp's 'smollm'" in message for message in messages), messages
    agreement = tokenization_agreement(out, AutoTokenizer.from_pretrained(model))
    assert agreement.agreeing == agreement.total == len(SAMPLE_TEXTS), agreement.mismatches
    assert not (tmp_path / ".qwen2.gguf.vocab").exists()
