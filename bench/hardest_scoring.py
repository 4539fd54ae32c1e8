"""Benchmark: per-example loss for the hardest-examples report vs the plain way, on the built-in model.

Studio's way: `score_examples` (rows sorted by length within chunks, batched up to a token budget, one
forward pass per batch, the loss of each row from the logits of its own trained tokens).
The plain ways, on the same tokenized rows, same model, same masks:
  - one row at a time with `model(input_ids, labels=labels).loss` (what most scripts do);
  - fixed batches of `micro_batch_size` rows in file order, padded, loss per row from the logits.

The three must agree on every row's loss (checked); the ratios are plain time / Studio time (>1: Studio is
faster). Model loading and tokenizing are not timed.

    .venv/bin/python bench/hardest_scoring.py [--dataset resources/samples/chatbot.jsonl] [--rows 334]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def tokenized_rows(dataset: Path, tokenizer: Any, model_path: Path, max_length: int, rows: int) -> Any:
    from studio.engine.datasets import DatasetOptions, prepare_dataset
    from studio.engine.training.data import tokenize_split

    options = DatasetOptions(eval_fraction=0.0, tokenizer_path=model_path, max_length=max_length)
    prepared = prepare_dataset(dataset, options)
    split = tokenize_split(prepared.train, tokenizer, assistant_only=True)
    return split.data.select(range(min(rows, len(split.data))))


def row_losses(logits: Any, labels: Any) -> list[tuple[float, int]]:
    """(mean loss per trained token, trained tokens) of each row; labels -100 are not trained."""
    import torch

    shifted, targets = logits[:, :-1].float(), labels[:, 1:]
    losses = torch.nn.functional.cross_entropy(
        shifted.reshape(-1, shifted.size(-1)), targets.reshape(-1), ignore_index=-100, reduction="none"
    ).view(targets.shape)
    trained = (targets != -100).sum(dim=1)
    return [(float(losses[i].sum() / max(int(trained[i]), 1)), int(trained[i])) for i in range(len(trained))]


def labels_for(ids: list[int], masks: list[int]) -> list[int]:
    return [token if mask else -100 for token, mask in zip(ids, masks, strict=True)]


def plain_one_by_one(model: Any, data: Any, max_length: int) -> list[float]:
    import torch

    out = []
    with torch.no_grad():
        for row in data:
            ids, masks = row["input_ids"][:max_length], row["assistant_masks"][:max_length]
            labels = torch.tensor([labels_for(ids, masks)])
            out.append(float(model(input_ids=torch.tensor([ids]), labels=labels).loss))
    return out


def plain_fixed_batches(model: Any, data: Any, max_length: int, batch: int, pad_id: int) -> list[float]:
    import torch

    out: list[float] = []
    with torch.no_grad():
        for start in range(0, len(data), batch):
            rows = data[start : start + batch]
            ids = [r[:max_length] for r in rows["input_ids"]]
            masks = [m[:max_length] for m in rows["assistant_masks"]]
            width = max(len(r) for r in ids)
            input_ids = torch.tensor([r + [pad_id] * (width - len(r)) for r in ids])
            attention = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in ids])
            labels = torch.tensor([labels_for(r, m) + [-100] * (width - len(r)) for r, m in zip(ids, masks,
                                                                                                   strict=True)])
            logits = model(input_ids=input_ids, attention_mask=attention).logits
            out.extend(loss for loss, _tokens in row_losses(logits, labels))
    return out


def timed(fn: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", type=Path, default=ROOT / "resources" / "samples" / "chatbot.jsonl")
    parser.add_argument("--rows", type=int, default=334)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch", type=int, default=4, help="micro-batch size (Studio's budget is batch x length)")
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.engine.models.builtin import ensure_builtin
    from studio.engine.training.example_loss import pad_token_id, score_examples

    torch.manual_seed(0)
    model_path = ensure_builtin()
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32).eval()
    data = tokenized_rows(args.dataset, tokenizer, model_path, args.max_length, args.rows)
    pad = pad_token_id(tokenizer)
    print(f"{len(data)} rows, max_length {args.max_length}, {torch.get_num_threads()} threads")

    studio_s, studio = timed(lambda: score_examples(model, data, list(range(len(data))), max_length=args.max_length,
                                                    token_budget=args.batch * args.max_length, pad_id=pad))
    batched_s, batched = timed(lambda: plain_fixed_batches(model, data, args.max_length, args.batch, pad))
    single_s, single = timed(lambda: plain_one_by_one(model, data, args.max_length))

    ours = [item.loss for item in studio]
    worst = max(max(abs(a - b), abs(a - c)) for a, b, c in zip(ours, batched, single, strict=True))
    assert worst < 1e-3, f"the three ways disagree on a row's loss by {worst:.2e}"
    print(f"Every row's loss agrees within {worst:.1e}.")
    print(f"Studio (length-sorted, token budget):  {studio_s:7.1f} s  ({len(data) / studio_s:6.1f} rows/s)")
    fixed = f"Plain, batches of {args.batch} in file order:"
    print(f"{fixed:37s}  {batched_s:7.1f} s  -> Studio is {batched_s / studio_s:.2f}x")
    print(f"Plain, one row at a time:           {single_s:7.1f} s  -> Studio is {single_s / studio_s:.2f}x")


if __name__ == "__main__":
    main()
