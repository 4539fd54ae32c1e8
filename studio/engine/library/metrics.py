"""The quality check's per-example metrics and its verdict in words: exact match and token F1 for answers,
ROUGE-L for summaries, a pass rate for code that ships its own tests, and the base-vs-tuned tally.

Everything here is plain Python on strings and numbers (no model), so it is cheap to test exhaustively. The
code runner is the one exception: it runs generated code in a separate Python process, in a temporary
folder, with a timeout and with sockets switched off, because generated code must never touch the network
or hang the check.
"""

from __future__ import annotations

import math
import os
import re
import string
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Outcome = Literal["better", "same", "worse"]
Overall = Literal["better", "same", "worse", "unknown"]

CODE_TIMEOUT_S = 10.0
SMALL_SAMPLE = 20  # fewer examples than this and the verdict says it is only a rough guide
LOSS_TOLERANCE = 0.02  # per-example held-out losses within 2% of each other count as the same
SCORE_TOLERANCE = 0.02  # per-example scores in [0, 1] within this of each other count as the same


# ---- answers (SQuAD-style normalization) ----------------------------------------------------------------

def normalize_answer(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in string.punctuation)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


# ---- summaries ------------------------------------------------------------------------------------------

def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence, in O(len(a)·len(b)) time and O(len(b)) memory."""
    if not a or not b:
        return 0
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b, start=1):
            current.append(previous[j - 1] + 1 if x == y else max(previous[j], current[j - 1]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure on lower-cased word tokens: how much of the reference's wording, in order, the
    prediction keeps (1.0 for the same words in the same order, 0.0 for nothing in common)."""
    pred, ref = _words(prediction), _words(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = lcs_length(pred, ref)
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


# ---- code with its own tests ----------------------------------------------------------------------------

_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[ \t]*\n(.*?)(?:```|\Z)", re.S | re.I)

# Put first in every script: no sockets, so generated code cannot reach the network, and bounded memory and
# file sizes (set inside the child, since a preexec_fn is unsafe in a program with threads like the GUI).
_NO_NETWORK = """\
try:
    import resource as _resource
    _resource.setrlimit(_resource.RLIMIT_AS, (2 << 30, 2 << 30))
    _resource.setrlimit(_resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
    del _resource
except (ImportError, ValueError, OSError):
    pass
import socket as _socket
def _no_network(*_args, **_kwargs):
    raise OSError("The network is switched off while Studio runs code tests.")
_socket.socket = _no_network
_socket.create_connection = _no_network
_socket.getaddrinfo = _no_network
del _socket
"""


def extract_code(text: str) -> str:
    """The code in a model's answer: the fenced blocks if there are any, else the whole answer."""
    blocks = _FENCE.findall(text)
    return "\n\n".join(block.strip("\n") for block in blocks) if blocks else text


@dataclass(frozen=True)
class CodeResult:
    passed: bool
    detail: str  # why it failed, in a line ("" when it passed)


def run_code_tests(code: str, tests: str, timeout_s: float = CODE_TIMEOUT_S) -> CodeResult:
    """Run `code` then `tests` (Python, e.g. asserts) in a fresh isolated interpreter in a temp folder."""
    if not tests.strip():
        return CodeResult(False, "no tests")
    script = f"{_NO_NETWORK}\n{code}\n\n{tests}\n"
    with tempfile.TemporaryDirectory(prefix="studio-code-test-") as folder:
        path = Path(folder) / "solution_test.py"
        path.write_text(script, encoding="utf-8")
        env = {"PATH": os.environ.get("PATH", ""), "HOME": folder, "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONHASHSEED": "0", "NO_PROXY": "*", "no_proxy": "*"}
        try:
            done = subprocess.run([sys.executable, "-I", str(path)], cwd=folder, env=env, capture_output=True,
                                  text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return CodeResult(False, f"ran longer than {timeout_s:g} s")
    if done.returncode == 0:
        return CodeResult(True, "")
    lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return CodeResult(False, lines[-1][:200] if lines else f"exit code {done.returncode}")


# ---- base vs tuned, example by example ------------------------------------------------------------------

def compare_scores(base: float, tuned: float, higher_is_better: bool) -> Outcome:
    """One example: did the tuned model do better, the same, or worse than the base?"""
    if math.isnan(base) or math.isnan(tuned):
        return "same"
    if higher_is_better:
        if abs(tuned - base) <= SCORE_TOLERANCE:
            return "same"
        return "better" if tuned > base else "worse"
    scale = max(abs(base), 1e-9)
    if abs(tuned - base) / scale <= LOSS_TOLERANCE:
        return "same"
    return "better" if tuned < base else "worse"


def sign_test_p(better: int, worse: int) -> float:
    """Two-sided exact sign test: how likely a split at least this uneven is if neither model is better."""
    n = better + worse
    if n == 0:
        return 1.0
    low = min(better, worse)
    tail = sum(math.comb(n, k) for k in range(low + 1)) / 2**n
    return float(min(1.0, 2 * tail))


@dataclass(frozen=True)
class Tally:
    """How many held-out examples the tuned model did better, the same or worse on, and by which metric."""

    better: int
    same: int
    worse: int
    metric: str  # the metric's label as shown, e.g. "token F1" or "held-out loss"

    @property
    def total(self) -> int:
        return self.better + self.same + self.worse

    @property
    def overall(self) -> Overall:
        """Better or worse only when the split is unlikely to be chance (sign test, p < 0.05)."""
        if self.total == 0:
            return "unknown"
        if self.better != self.worse and sign_test_p(self.better, self.worse) < 0.05:
            return "better" if self.better > self.worse else "worse"
        return "same"

    @property
    def small(self) -> bool:
        return 0 < self.total < SMALL_SAMPLE


def tally(outcomes: list[Outcome], metric: str) -> Tally:
    counts = Counter(outcomes)
    return Tally(counts["better"], counts["same"], counts["worse"], metric)


def _examples(n: int) -> str:
    return f"{n} held-out example{'s' if n != 1 else ''}"


def _count(n: int) -> str:
    return str(n) if n else "none"


def verdict_sentence(result: Tally) -> str:
    """The verdict in one or two plain sentences, e.g. "Better than the base model on 41 of 50 held-out
    examples." Honest about ties, about mixed results and about small samples."""
    n = result.total
    if n == 0:
        return "Not enough held-out examples to judge."
    by = f" (by {result.metric})"
    overall = result.overall
    if overall == "better":
        text = f"Better than the base model on {result.better} of {_examples(n)}{by}; worse on {_count(result.worse)}."
    elif overall == "worse":
        text = f"Worse than the base model on {result.worse} of {_examples(n)}{by}; better on {_count(result.better)}."
    elif result.better == result.worse == 0:
        text = f"About the same as the base model: no difference on any of the {_examples(n)}{by}."
    else:
        text = (f"About the same as the base model: better on {result.better} of {_examples(n)}{by}, "
                f"worse on {result.worse}.")
    if result.small:
        text += f" Only {n} example{'s were' if n != 1 else ' was'} checked, so take this as a rough guide."
    return text
