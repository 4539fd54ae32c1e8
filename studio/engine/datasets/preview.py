"""Examples rendered exactly as the model will see them, with the trained part marked.

Training computes the loss on the assistant's answers only. The preview shows the full chat-template text
split into segments, each flagged `trained` or not, so a person can see what the model learns to say. A
preference pair is shown as its chosen conversation (`segments`) and its rejected one (`rejected`), each
with the prompt; KTO's labeled answer as its conversation and the label.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

from studio.engine.datasets.tokens import TokenCounter, conversations


@dataclass
class PreviewExample:
    segments: list[tuple[str, bool]] = field(default_factory=list)
    tokens: int = 0
    error: str = ""  # set when the model's chat template refuses the example
    rejected: list[tuple[str, bool]] = field(default_factory=list)  # a preference pair's rejected side
    label: bool | None = None  # KTO: whether the answer is marked good

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self.segments)

    @property
    def trained_text(self) -> str:
        return "".join(text for text, trained in self.segments if trained)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "segments": [{"text": text, "trained": trained} for text, trained in self.segments],
            "tokens": self.tokens,
            "error": self.error,
        }
        if self.rejected:
            data["rejected"] = [{"text": text, "trained": trained} for text, trained in self.rejected]
        if self.label is not None:
            data["label"] = self.label
        return data


def render_preview(examples: Iterable[dict[str, Any]], tokenizer_path: str | Path, n: int = 5) -> list[PreviewExample]:
    """The first `n` normalized examples through the model's chat template (ChatML when it has none)."""
    counter = TokenCounter(tokenizer_path)
    chosen = list(islice(examples, n))
    previews = []
    for example, tokens in zip(chosen, counter.lengths(chosen) if chosen else [], strict=True):
        if isinstance(tokens, str):
            previews.append(PreviewExample(error=f"The model's chat template refuses this example: {tokens}"))
        elif "messages" in example:
            previews.append(PreviewExample(_conversation_segments(counter, example["messages"]), tokens))
        elif "prompt" in example:
            preferred, *rejected = (_conversation_segments(counter, chat) for chat in conversations(example))
            previews.append(PreviewExample(preferred, tokens, rejected=rejected[0] if rejected else [],
                                           label=example.get("label")))
        else:
            eos = counter.tokenizer.eos_token or ""
            previews.append(PreviewExample([(example["text"] + eos, True)], tokens))
    return previews


def _conversation_segments(counter: TokenCounter, messages: list[dict[str, str]]) -> list[tuple[str, bool]]:
    """Render growing prefixes: each turn adds a segment; an assistant turn's header stays untrained."""
    full = counter.render([messages])[0]
    segments: list[tuple[str, bool]] = []
    previous = ""
    for index, message in enumerate(messages):
        try:
            upto = counter.render([messages[: index + 1]])[0]
            header = counter.render([messages[:index]], add_generation_prompt=True)[0]
        except Exception:  # some templates refuse partial conversations; search the full text instead
            return _search_segments(full, messages)
        if message["role"] == "assistant":
            if not (header.startswith(previous) and upto.startswith(header)):
                return _search_segments(full, messages)
            segments += [(header[len(previous) :], False), (upto[len(header) :], True)]
        else:
            if not upto.startswith(previous):
                return _search_segments(full, messages)
            segments.append((upto[len(previous) :], False))
        previous = upto
    if previous != full:
        return _search_segments(full, messages)
    return [(text, trained) for text, trained in segments if text]


def _search_segments(full: str, messages: list[dict[str, str]]) -> list[tuple[str, bool]]:
    """For templates that rewrite earlier turns: find each answer in the full text instead."""
    segments: list[tuple[str, bool]] = []
    cursor = 0
    for message in messages:
        if message["role"] != "assistant":
            continue
        start = full.find(message["content"], cursor)
        if start < 0:
            continue
        segments += [(full[cursor:start], False), (message["content"], True)]
        cursor = start + len(message["content"])
    segments.append((full[cursor:], False))
    return [(text, trained) for text, trained in segments if text]
