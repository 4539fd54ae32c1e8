"""Benchmark: full validation with token statistics vs the plain way, on 100,000 JSONL conversations.

Studio's way: `validate_file(path, DatasetOptions(tokenizer_path=..., max_length=...))` (read, normalize, check
every row, duplicates, personal data, token statistics through the chat template).
The plain way: `datasets.load_dataset("json")`, then one batched tokenizer call on the same rows rendered
through the chat template.

Each way runs in its own fresh process (tokenizer loading excluded from the timing) so its peak memory
can be measured; the ratio target is <= 1.3x.

    .venv/bin/python bench/dataset_validate.py [--rows 100000] [--model builtin]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 1.3
WORDS = [
    "the",
    "a",
    "model",
    "data",
    "train",
    "answer",
    "question",
    "user",
    "helpful",
    "small",
    "quick",
    "because",
    "when",
    "where",
    "which",
    "water",
    "light",
    "house",
    "garden",
    "city",
    "river",
    "mountain",
    "computer",
    "program",
    "function",
    "value",
    "list",
    "number",
    "text",
    "file",
    "write",
    "read",
    "learn",
    "simple",
    "example",
    "people",
    "time",
    "day",
    "year",
    "good",
    "new",
    "first",
    "last",
    "long",
    "great",
    "little",
    "own",
    "other",
    "old",
    "right",
    "big",
    "high",
    "different",
    "following",
    "large",
    "next",
    "early",
    "young",
    "important",
    "few",
    "public",
    "bad",
    "same",
    "able",
]


def make_rows(path: Path, count: int, seed: int = 0) -> None:
    rng = random.Random(seed)

    def sentence(low: int, high: int) -> str:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high))).capitalize() + "."

    with path.open("w", encoding="utf-8") as handle:
        for index in range(count):
            messages = []
            if index % 3 == 0:
                messages.append({"role": "system", "content": "You are a helpful assistant."})
            messages.append({"role": "user", "content": f"{sentence(5, 40)} ({index})"})
            messages.append(
                {"role": "assistant", "content": " ".join(sentence(5, 30) for _ in range(rng.randint(1, 4)))}
            )
            handle.write(json.dumps({"messages": messages}) + "\n")


def run_studio(data: Path, model: Path, max_length: int) -> dict[str, object]:
    from studio.engine.datasets import DatasetOptions, validate_file
    from studio.engine.datasets.tokens import load_tokenizer

    load_tokenizer(str(model))
    baseline = _peak_mb()
    started = time.perf_counter()
    report = validate_file(data, DatasetOptions(tokenizer_path=model, max_length=max_length), use_cache=False)
    seconds = time.perf_counter() - started
    assert report.stats is not None
    return {
        "seconds": seconds,
        "rows": report.rows_usable,
        "tokens": report.stats.total_tokens,
        "p99": report.stats.p99,
        "baseline_mb": baseline,
        "peak_mb": _peak_mb(),
    }


def run_plain(data: Path, model: Path, cache: Path) -> dict[str, object]:
    import datasets
    from transformers import AutoTokenizer

    datasets.disable_progress_bars()
    tokenizer = AutoTokenizer.from_pretrained(model)
    baseline = _peak_mb()
    started = time.perf_counter()
    rows = datasets.load_dataset("json", data_files=str(data), split="train", cache_dir=str(cache))
    texts = tokenizer.apply_chat_template(list(rows["messages"]), tokenize=False)
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "rows": len(lengths),
        "tokens": sum(lengths),
        "p99": sorted(lengths)[int(0.99 * len(lengths))],
        "baseline_mb": baseline,
        "peak_mb": _peak_mb(),
    }


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(way: str, data: Path, model: Path, max_length: int, cache: Path) -> dict[str, object]:
    command = [
        sys.executable,
        __file__,
        "--child",
        way,
        "--data",
        str(data),
        "--model",
        str(model),
        "--max-length",
        str(max_length),
        "--cache",
        str(cache),
    ]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--model", default="builtin")
    parser.add_argument("--max-length", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=2, help="Runs of each way; the fastest counts.")
    parser.add_argument("--child", choices=["studio", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        result = (
            run_studio(args.data, Path(args.model), args.max_length)
            if args.child == "studio"
            else run_plain(args.data, Path(args.model), args.cache)
        )
        print(json.dumps(result))
        return

    from studio.engine.models.resolve import resolve_model

    model = resolve_model(args.model)
    with tempfile.TemporaryDirectory(prefix="studio-bench-") as folder:
        data = Path(folder) / "rows.jsonl"
        make_rows(data, args.rows)
        print(f"{args.rows:,} rows, {data.stat().st_size / 1e6:.1f} MB, tokenizer {model.name}")
        results: dict[str, list[dict[str, object]]] = {"plain": [], "studio": []}
        for attempt in range(args.repeat):
            for way in ("plain", "studio"):
                cache = Path(folder) / f"hf-cache-{way}-{attempt}"
                results[way].append(_child(way, data, model, args.max_length, cache))
        best = {way: min(runs, key=lambda r: float(r["seconds"])) for way, runs in results.items()}
    for way in ("plain", "studio"):
        r = best[way]
        print(
            f"{way:>6}: {float(r['seconds']):6.2f} s  rows {r['rows']:,}  tokens {r['tokens']:,}  "
            f"p99 {r['p99']}  peak RSS {float(r['peak_mb']):.0f} MB "
            f"(after loading the tokenizer: {float(r['baseline_mb']):.0f} MB)"
        )
    ratio = float(best["studio"]["seconds"]) / float(best["plain"]["seconds"])
    verdict = "OK" if ratio <= TARGET_RATIO else "SLOWER THAN TARGET"
    print(f"ratio studio/plain: {ratio:.2f}x (target <= {TARGET_RATIO}x): {verdict}")
    if best["studio"]["tokens"] != best["plain"]["tokens"]:
        print(f"note: token totals differ ({best['studio']['tokens']:,} vs {best['plain']['tokens']:,})")


if __name__ == "__main__":
    main()
