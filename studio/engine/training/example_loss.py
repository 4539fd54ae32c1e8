"""Per-example loss: how badly the model fits each example, on exactly the tokens training learns from.

One implementation serves the hardest examples shown after each evaluation, the report written after
training, `studio hardest` on older runs, and the comparison with an earlier version (`compare_adapter`).
As in TRL's training, a row is cut to `max_length` from its start and only its assistant-masked tokens are
labels; the loss of a row is its mean cross-entropy per trained token. Rows are sorted by length within
chunks and batched up to a token budget, so padding stays small and memory stays bounded.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase

CHUNK_ROWS = 512  # rows read from the dataset at a time; sorting happens within a chunk
PREVIEW_CHARS = 300
_SPECIAL_MARKER = re.compile(r"<\|[^|<>]{1,40}\|>")  # <|im_start|>, <|eot_id|>, … (chat-template tokens)

Row = tuple[int, list[int], list[int]]  # (position in the split, input ids, assistant mask)


@dataclass(frozen=True)
class ExampleLoss:
    position: int  # row of the tokenized split
    loss: float  # mean cross-entropy per trained token
    tokens: int  # trained tokens (labels the model predicts)


def pick_positions(total: int, limit: int, seed: int) -> list[int]:
    """Every row, or a seeded sample of `limit` rows in their order: the same rows each time, spread over
    the whole split rather than its first part."""
    if total <= limit:
        return list(range(total))
    return sorted(random.Random(seed).sample(range(total), limit))


def pad_token_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The id batches are padded with, as the Trainer pads them (the pad token, else end-of-sequence)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return int(pad or 0)


def score_examples(
    model: Any,
    data: Dataset,
    positions: Sequence[int],
    *,
    max_length: int,
    token_budget: int,
    pad_id: int,
    progress: Callable[[float], None] | None = None,
    between_batches: Callable[[], None] | None = None,
) -> list[ExampleLoss]:
    """The loss of each row of `data` (input_ids + assistant_masks) at `positions`, in position order.
    Rows left without a trained token after the cut are skipped. `between_batches` may raise to stop."""
    import torch

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    results: list[ExampleLoss] = []
    done = 0
    try:
        with torch.no_grad():
            for start in range(0, len(positions), CHUNK_ROWS):
                chunk = list(positions[start : start + CHUNK_ROWS])
                columns = data[chunk]
                rows: list[Row] = [
                    (position, ids[:max_length], masks[:max_length])
                    for position, ids, masks in zip(
                        chunk, columns["input_ids"], columns["assistant_masks"], strict=True
                    )
                ]
                rows.sort(key=lambda row: len(row[1]))
                for batch in _batches(rows, token_budget):
                    if between_batches is not None:
                        between_batches()
                    results.extend(_score_batch(model, batch, pad_id, device))
                    done += len(batch)
                    if progress is not None:
                        progress(done / len(positions))
    finally:
        if was_training:
            model.train()
    return sorted(results, key=lambda result: result.position)


class Scored(Protocol):
    @property
    def loss(self) -> float: ...

    @property
    def tokens(self) -> int: ...


def mean_loss(losses: Sequence[Scored]) -> float | None:
    """Loss per trained token over all of them (long answers weigh more, as in training)."""
    tokens = sum(item.tokens for item in losses)
    return sum(item.loss * item.tokens for item in losses) / tokens if tokens else None


def render(tokenizer: PreTrainedTokenizerBase, data: Dataset, positions: Sequence[int], max_length: int) -> list[str]:
    """The text of each row as the model saw it: chat template applied, special tokens kept, cut like training."""
    texts: list[str] = []
    for start in range(0, len(positions), CHUNK_ROWS):
        ids = data[list(positions[start : start + CHUNK_ROWS])]["input_ids"]
        texts.extend(tokenizer.batch_decode([row[:max_length] for row in ids], skip_special_tokens=False))
    return texts


def preview(text: str, limit: int = PREVIEW_CHARS, keep_start: bool = True) -> str:
    """A one-line glimpse of a rendered example: template markers dropped, whitespace collapsed, and when too
    long the middle cut out (or the start, for a narrow column): the end holds the answer, usually what is wrong."""
    flat = " ".join(_SPECIAL_MARKER.sub(" ", text).split())
    if len(flat) <= limit:
        return flat
    head = limit // 3 if keep_start else 0
    start = f"{flat[:head].rstrip()} " if head else ""
    return f"{start}… {flat[len(flat) - (limit - len(start) - 2) :].lstrip()}"


def _batches(rows: list[Row], token_budget: int) -> list[list[Row]]:
    """Consecutive rows (sorted by length) grouped so that rows x longest row stays within the budget."""
    batches: list[list[Row]] = []
    current: list[Row] = []
    for row in rows:
        if current and (len(current) + 1) * max(len(row[1]), 1) > token_budget:
            batches.append(current)
            current = []
        current.append(row)
    if current:
        batches.append(current)
    return batches


def _score_batch(model: Any, batch: list[Row], pad_id: int, device: Any) -> list[ExampleLoss]:
    import torch
    import torch.nn.functional as F  # noqa: N812 - the usual name

    width = max(len(ids) for _position, ids, _masks in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(batch), width), dtype=torch.long)
    labels = torch.full((len(batch), width), -100, dtype=torch.long)
    for i, (_position, ids, masks) in enumerate(batch):
        tokens = torch.tensor(ids, dtype=torch.long)
        input_ids[i, : len(ids)] = tokens
        attention[i, : len(ids)] = 1
        labels[i, : len(ids)] = torch.where(torch.tensor(masks, dtype=torch.bool), tokens, -100)
    logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device), use_cache=False).logits
    targets = labels[:, 1:].to(logits.device)  # the model predicts token t from the tokens before it
    results = []
    for i, (position, _ids, _masks) in enumerate(batch):
        count = int((targets[i] != -100).sum())
        if count == 0:
            continue
        total = F.cross_entropy(logits[i, :-1].float(), targets[i], ignore_index=-100, reduction="sum")
        results.append(ExampleLoss(position=position, loss=float(total) / count, tokens=count))
    return results
