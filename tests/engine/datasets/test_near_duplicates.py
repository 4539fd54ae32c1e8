"""Near duplicates: a few words changed or a sentence added is caught and names the earlier line; shared
boilerplate is not; exact duplicates stay exact; the row cap is reported; the result is the same in every
process (no salted hash)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from studio.engine.datasets import neardup, validate_file
from studio.engine.datasets.report import ValidationReport

VOCAB = [
    "river",
    "garden",
    "lamp",
    "window",
    "harbour",
    "engine",
    "pocket",
    "violet",
    "thunder",
    "marble",
    "candle",
    "ladder",
    "orchard",
    "compass",
    "blanket",
    "meadow",
    "copper",
    "falcon",
    "lantern",
    "velvet",
    "saddle",
    "barrel",
    "whistle",
    "pepper",
    "island",
    "feather",
    "mirror",
    "cabinet",
    "tunnel",
    "parade",
    "ribbon",
    "kettle",
    "basket",
    "glacier",
    "canyon",
    "anchor",
    "trumpet",
    "pillow",
    "hammer",
]
SYSTEM = (
    "You are a careful assistant for a travel company. Answer politely, keep every answer short, never "
    "invent prices or opening hours, and when you are not sure say so and point the customer to the help "
    "desk, which is open every day from nine in the morning until six in the evening."
)


def words(seed: int, count: int) -> str:
    """Deterministic text of unrelated words: two different seeds share almost no word 3-grams."""
    rng = random.Random(seed)
    return " ".join(rng.choice(VOCAB) for _ in range(count))


def changed(text: str, *positions: int) -> str:
    """The same text with the words at these positions replaced."""
    tokens = text.split()
    for position in positions:
        tokens[position] = "zebra" if tokens[position] != "zebra" else "yak"
    return " ".join(tokens)


def chat(user: str, assistant: str, system: str | None = None) -> dict[str, object]:
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
    return {"messages": messages}


def near(report: ValidationReport) -> list[tuple[int, str]]:
    issue = report.issue("near_duplicates")
    return [(example["line"], example["detail"]) for example in issue.examples] if issue else []


ANSWER = words(1, 100)
OTHER = words(2, 100)
NEAR_ROWS = [
    {"prompt": "Explain how the harbour lights work.", "completion": ANSWER},
    {"prompt": "Describe the garden in spring.", "completion": OTHER},
    {"prompt": "Explain how the harbour lights work.", "completion": changed(ANSWER, 30, 70)},
    {"prompt": "Explain how the harbour lights work.", "completion": ANSWER + " It is a calm and quiet evening."},
    {"prompt": "Describe the garden in spring!", "completion": changed(OTHER, 50)},
]


@pytest.mark.parametrize("batch", [neardup.BATCH, 2])
def test_a_few_words_changed_or_a_sentence_added_is_a_near_duplicate_of_the_earlier_line(
    write_jsonl: Callable[..., Path], monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    monkeypatch.setattr(neardup, "BATCH", batch)  # 2: matches across batches and merged runs of the index
    report = validate_file(write_jsonl("near.jsonl", NEAR_ROWS), use_cache=False)
    assert near(report) == [(3, "like line 1"), (4, "like line 1"), (5, "like line 2")]
    issue = report.issue("near_duplicates")
    assert issue is not None and issue.severity == "info"
    assert issue.message.startswith("3 rows are nearly the same as an earlier row")
    assert report.rows_usable == 5 and report.duplicates_removed == 0  # kept for training


def test_shared_system_prompt_question_template_or_context_is_not_a_near_duplicate(
    write_jsonl: Callable[..., Path],
) -> None:
    context = words(3, 80)
    rows = [chat(f"Translate into French: {words(10 + i, 8)}", words(100 + i, 12), SYSTEM) for i in range(40)]
    rows += [chat(f"{context}\n\nQuestion: {words(200 + i, 6)}?", words(300 + i, 5)) for i in range(40)]
    report = validate_file(write_jsonl("boilerplate.jsonl", rows), use_cache=False)
    assert report.rows_usable == 80
    assert report.issue("near_duplicates") is None, report.render()


def test_an_exact_duplicate_stays_exact_only_and_only_words_count(write_jsonl: Callable[..., Path]) -> None:
    first = chat("Hello, how are you today?", "I'm fine, thanks! And you?", SYSTEM)
    rows = [
        first,
        first,
        chat("Hello, how are you today?", "I'm fine, thanks! And you?", "Be brief."),  # other system prompt
        chat("HELLO how are you   today", "“I’m fine — thanks… and you” 🙂"),  # case, punctuation, spacing
    ]
    report = validate_file(write_jsonl("dupes.jsonl", rows), use_cache=False)
    exact = report.issue("exact_duplicates")
    assert exact is not None and [example["line"] for example in exact.examples] == [2]
    assert near(report) == [(3, "like line 1"), (4, "like line 1")]
    assert report.duplicates_removed == 1 and report.rows_usable == 3


def test_the_row_cap_is_respected_and_reported(
    write_jsonl: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(neardup, "MAX_ROWS", 4)
    rows = [{"prompt": "Explain the lights.", "completion": words(20 + i, 60)} for i in range(3)]
    rows.append({"prompt": "Explain the lights.", "completion": changed(rows[0]["completion"], 20)})  # line 4
    rows.append({"prompt": "Explain the lights.", "completion": words(30, 60)})  # past the cap
    rows.append({"prompt": "Explain the lights.", "completion": changed(rows[0]["completion"], 40)})  # not checked
    rows.append(rows[0])  # an exact duplicate is still found past the cap
    report = validate_file(write_jsonl("capped.jsonl", rows), use_cache=False)
    assert near(report) == [(4, "like line 1")]
    issue = report.issue("near_duplicates")
    assert issue is not None and issue.message.startswith("1 row is nearly the same as an earlier row")
    partial = report.issue("near_duplicates_partial")
    assert partial is not None and partial.count == 2
    assert "covered the first 4 rows" in partial.message
    assert report.duplicates_removed == 1


def test_many_batches_find_every_near_copy_and_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(neardup, "BATCH", 7)
    texts = [words(1000 + i, 80) for i in range(300)]
    found: list[tuple[int, int]] = []
    checker = neardup.NearDuplicates(lambda line, earlier, _value: found.append((line, earlier)))
    lines: list[int] = []  # the line of each text
    expected: list[tuple[int, int]] = []
    for index, text in enumerate(texts):
        lines.append(len(lines) + len(expected) + 1)
        checker.add(lines[-1], text)
        if index % 10 == 9:  # a near copy of a text a few batches back
            copy_line = lines[-1] + 1
            checker.add(copy_line, changed(texts[index - 8], 40))
            expected.append((copy_line, lines[index - 8]))
    checker.flush()
    assert checker.checked == len(texts) + len(expected) and checker.unchecked == 0
    assert found == expected


def test_surrogates_emoji_and_empty_texts_do_not_break_the_check() -> None:
    found: list[tuple[int, int]] = []
    checker = neardup.NearDuplicates(lambda line, earlier, _value: found.append((line, earlier)))
    for line, text in enumerate(["caf\u00e9 \ud800 “quoted” 🙂 ok", "CAFÉ \ud800 quoted ok!", "", "!!! …", "é"], 1):
        checker.add(line, text)
    checker.flush()
    assert found == [(2, 1)]


_REPORT_IN_CHILD = """
import json, sys
from studio.engine.datasets import validate_file
report = validate_file(sys.argv[1], use_cache=False).to_dict()
print(json.dumps(report["issues"]))
"""


def test_the_same_file_gives_the_same_report_in_other_processes(write_jsonl: Callable[..., Path]) -> None:
    path = write_jsonl("near.jsonl", [*NEAR_ROWS, NEAR_ROWS[0]])
    here = validate_file(path, use_cache=False).to_dict()["issues"]
    for seed in ("1", "2"):
        child = subprocess.run(
            [sys.executable, "-c", _REPORT_IN_CHILD, str(path)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(child.stdout.strip().splitlines()[-1]) == here
