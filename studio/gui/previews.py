"""One-line previews of training examples in tables (the dashboard's hardest examples, the library's report):
what differs between the examples, not the system prompt they all start with."""

from __future__ import annotations

SHARED_START_MIN = 20  # characters; a shorter shared start is left in the previews
CONTEXT_WORDS = 3  # of the shared start, kept in front of what differs


def without_shared_start(previews: list[str]) -> list[str]:
    """Drop the words every preview starts with (a system prompt, usually) but the last few; the full text
    elsewhere still has them."""
    if len(previews) < 2:
        return previews
    low, high = min(previews), max(previews)  # what all share, the first and last in order share
    size = next((i for i, (a, b) in enumerate(zip(low, high, strict=False)) if a != b),
                min(len(low), len(high)))
    shared = low[: low[:size].rfind(" ") + 1].rstrip()  # whole words only
    kept = " ".join(shared.split(" ")[-CONTEXT_WORDS:])  # "user What is", so the question still reads
    cut = len(shared) - len(kept)
    if cut < SHARED_START_MIN:
        return previews
    return [f"… {text[cut:]}" for text in previews]
