"""Tokenization for training, with the loss on the assistant's answers only.

TRL finds assistant tokens through `{% generation %}` markers in the chat template, which most small
models' templates (SmolLM2's included) lack. So Studio renders each conversation itself and marks the
characters each assistant turn adds to the text, then maps them to tokens through the tokenizer's offsets.
The result (`input_ids` + `assistant_masks`) is what TRL's SFTTrainer accepts as a pre-processed dataset:
it builds the labels (-100 outside the masks), truncates and packs from there.

Each example also gets a fingerprint (a hash of its normalized content), so a report can name a row and a
later run can leave it out (`exclude_examples`) without depending on row positions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from studio.engine.errors import ExitCode, StudioError

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase

Message = dict[str, str]


def assistant_char_spans(
    tokenizer: PreTrainedTokenizerBase, messages: list[Message]
) -> tuple[str, list[tuple[int, int]]]:
    """The rendered conversation and the character ranges of the assistant turns (end-of-turn token included)."""
    text = _rendered(tokenizer, messages)
    spans: list[tuple[int, int]] = []
    for index, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        before = _rendered(tokenizer, messages[:index], generation_prompt=True) if index else ""
        through = _rendered(tokenizer, messages[: index + 1])
        if not text.startswith(through) or not through.startswith(before):
            # A template that rewrites earlier turns (drops past reasoning, moves the system prompt into the
            # last user turn as Mistral's does): fall back to finding the answer, and the end-of-turn text the
            # template puts right after it (so the model still learns to stop).
            content = message["content"]
            start = text.find(content, spans[-1][1] if spans else 0)
            if start < 0:
                continue
            end = start + len(content)
            tail = through[through.rfind(content) + len(content):] if content in through else ""
            spans.append((start, end + len(tail) if tail and text.startswith(tail, end) else end))
            continue
        spans.append((len(before), len(through)))
    return text, spans


def _rendered(tokenizer: PreTrainedTokenizerBase, messages: list[Message], generation_prompt: bool = False) -> str:
    """The conversation as the chat template writes it (text, not tokens)."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)
    assert isinstance(text, str), "apply_chat_template(tokenize=False) returns the text"
    return text


def tokenize_conversation(
    tokenizer: PreTrainedTokenizerBase, messages: list[Message], assistant_only: bool
) -> dict[str, list[int]]:
    text, spans = assistant_char_spans(tokenizer, messages)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = encoded["input_ids"]
    if not assistant_only:
        return {"input_ids": ids, "assistant_masks": [1] * len(ids)}
    masks = [
        int(any(start <= tok_start < end for start, end in spans))
        for tok_start, _tok_end in encoded["offset_mapping"]
    ]
    return {"input_ids": ids, "assistant_masks": masks}


def tokenize_text(tokenizer: PreTrainedTokenizerBase, text: str) -> dict[str, list[int]]:
    """Plain text (domain adaptation): every token is learned from, and the document ends with EOS."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if tokenizer.eos_token_id is not None:
        ids = [*ids, tokenizer.eos_token_id]
    return {"input_ids": ids, "assistant_masks": [1] * len(ids)}


def example_fingerprint(example: Mapping[str, Any]) -> str:
    """A short stable id of a normalized example ({"messages": [...]} or {"text": ...}): the same in every
    process and on every machine, unchanged when other rows of the file change."""
    messages = example.get("messages")
    body: dict[str, Any]
    if "prompt" in example:  # preference data: every side of the pair (or the labeled answer) counts
        body = {key: example[key] for key in ("prompt", "chosen", "rejected", "completion", "label") if key in example}
    elif messages is not None:
        body = {
            "messages": [
                {"role": str(message.get("role") or ""), "content": str(message.get("content") or "")}
                for message in messages
            ]
        }
    else:
        body = {"text": str(example.get("text") or "")}
    canonical = json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class TokenizedSplit:
    """One split as training sees it, and where each of its rows came from (for per-example reports)."""

    data: Dataset  # input_ids + assistant_masks: what the Trainer gets
    rows: list[int]  # data[i] is row rows[i] of the prepared split
    fingerprints: list[str]  # example_fingerprint of each row of `data`
    excluded: int  # rows left out because their fingerprint was asked to be excluded


@dataclass(frozen=True)
class TrainingData:
    """A run's tokenized splits; `held_out` is None when the data has no held-out share (or none is left)."""

    train: TokenizedSplit
    held_out: TokenizedSplit | None
    excluded: int  # examples left out of both splits by `exclude_examples`


def preference_split(dataset: Dataset, exclude: frozenset[str] = frozenset()) -> TokenizedSplit:
    """A prepared split of preference data as TRL's DPO, ORPO and KTO trainers take it: conversational rows
    that they render and tokenize themselves; rows whose fingerprint is in `exclude` are left out."""
    fingerprints = [example_fingerprint(row) for row in dataset]
    rows = [index for index, fingerprint in enumerate(fingerprints) if fingerprint not in exclude]
    kept = dataset.select(rows) if len(rows) < len(dataset) else dataset
    return TokenizedSplit(
        data=kept, rows=rows, fingerprints=[fingerprints[i] for i in rows], excluded=len(dataset) - len(rows)
    )


def check_objective(objective: str, columns: list[str]) -> None:
    """Refuse data that the run's objective cannot learn from, saying which objective it fits."""
    kind = "pairs" if "chosen" in columns else "labeled" if "label" in columns else "sft"
    fits = {"sft": {"sft"}, "dpo": {"pairs"}, "orpo": {"pairs"}, "kto": {"pairs", "labeled"}}[objective]
    if kind in fits:
        return
    held = {
        "pairs": "preference pairs (a chosen and a rejected answer to each prompt)",
        "labeled": "single answers marked good or bad (KTO's layout)",
        "sft": "prompts with one answer each, nothing saying which answers are better",
    }[kind]
    suggestion = {
        "pairs": "Train with `--objective dpo` (or orpo, or kto).",
        "labeled": "Train with `--objective kto`.",
        "sft": "Train with `--objective sft`, which imitates the answers.",
    }[kind]
    needs = "preference pairs" if objective in {"dpo", "orpo"} else "preference data" if objective == "kto" else (
        "prompts with answers to imitate"
    )
    raise StudioError(
        what=f"This dataset does not suit the {objective.upper()} objective, which needs {needs}.",
        why=f"The file holds {held}.",
        actions=[suggestion, "Or pick a file in the layout this objective needs (`studio validate FILE` shows it)."],
        code="objective_mismatch",
        exit_code=ExitCode.DATASET_UNUSABLE,
    )


def tokenize_split(
    dataset: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    assistant_only: bool,
    exclude: frozenset[str] = frozenset(),
) -> TokenizedSplit:
    """A prepared split with a "messages" or "text" column, tokenized for SFTTrainer; rows without an answer
    to learn and rows whose fingerprint is in `exclude` are left out."""
    columns = dataset.column_names
    if "messages" in columns:

        def encode(row: dict[str, Any]) -> dict[str, list[int]]:
            return tokenize_conversation(tokenizer, row["messages"], assistant_only)
    elif "text" in columns:

        def encode(row: dict[str, Any]) -> dict[str, list[int]]:
            return tokenize_text(tokenizer, row["text"])
    else:
        raise StudioError(
            what="The prepared dataset has neither conversations nor text.",
            why=f"Its columns are {', '.join(columns)}.",
            actions=[
                "Run `studio validate FILE` to see how Studio reads the file.",
                "Map the columns explicitly with a column mapping.",
            ],
            code="dataset_shape",
            exit_code=ExitCode.DATASET_UNUSABLE,
        )

    def convert(row: dict[str, Any], index: int) -> dict[str, Any]:
        return {**encode(row), "row": index, "fingerprint": example_fingerprint(row)}

    tokenized = dataset.map(convert, with_indices=True, remove_columns=columns, desc="Tokenizing")
    excluded = sum(1 for fingerprint in tokenized["fingerprint"] if fingerprint in exclude) if exclude else 0
    kept = tokenized.filter(
        lambda masks, fingerprint: any(masks) and fingerprint not in exclude,
        input_columns=["assistant_masks", "fingerprint"],
        desc="Dropping rows without answers" + (" and excluded rows" if exclude else ""),
    )
    return TokenizedSplit(
        data=kept.remove_columns(["row", "fingerprint"]),
        rows=list(kept["row"]),
        fingerprints=list(kept["fingerprint"]),
        excluded=excluded,
    )
