"""Tokenization for training, with the loss on the assistant's answers only.

TRL finds assistant tokens through `{% generation %}` markers in the chat template, which most small
models' templates (SmolLM2's included) lack. So Studio renders each conversation itself and marks the
characters each assistant turn adds to the text, then maps them to tokens through the tokenizer's offsets.
The result (`input_ids` + `assistant_masks`) is what TRL's SFTTrainer accepts as a pre-processed dataset:
it builds the labels (-100 outside the masks), truncates and packs from there.
"""

from __future__ import annotations

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
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    spans = []
    for index, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        before = (
            tokenizer.apply_chat_template(messages[:index], tokenize=False, add_generation_prompt=True)
            if index
            else ""
        )
        through = tokenizer.apply_chat_template(messages[: index + 1], tokenize=False)
        if not text.startswith(through) or not through.startswith(before):
            # A template that rewrites earlier turns (e.g. drops past reasoning): fall back to finding the answer.
            start = text.find(message["content"], spans[-1][1] if spans else 0)
            if start < 0:
                continue
            spans.append((start, start + len(message["content"])))
            continue
        spans.append((len(before), len(through)))
    return text, spans


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


def tokenize_dataset(dataset: Dataset, tokenizer: PreTrainedTokenizerBase, assistant_only: bool) -> Dataset:
    """A dataset with a "messages" or "text" column, tokenized for SFTTrainer."""
    columns = dataset.column_names
    if "messages" in columns:

        def convert(row: dict[str, Any]) -> dict[str, list[int]]:
            return tokenize_conversation(tokenizer, row["messages"], assistant_only)
    elif "text" in columns:

        def convert(row: dict[str, Any]) -> dict[str, list[int]]:
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
    tokenized = dataset.map(convert, remove_columns=columns, desc="Tokenizing")
    return tokenized.filter(lambda row: any(row["assistant_masks"]), desc="Dropping rows without answers")
