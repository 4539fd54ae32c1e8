"""The quality check's metrics and verdict wording: plain functions, checked on hand-made examples."""

from __future__ import annotations

import pytest

from studio.engine.library.metrics import (
    Tally,
    compare_scores,
    exact_match,
    extract_code,
    lcs_length,
    rouge_l,
    run_code_tests,
    sign_test_p,
    tally,
    token_f1,
    verdict_sentence,
)


def test_exact_match_and_f1_normalize_case_punctuation_and_articles():
    assert exact_match("The answer is 12.", "the answer is 12") == 1.0
    assert exact_match("13", "12") == 0.0
    assert token_f1("Pip says 12", "Pip says 13") == pytest.approx(2 / 3)
    assert token_f1("a cat", "the cat") == 1.0
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0 and token_f1("dog", "cat") == 0.0


def test_rouge_l_is_the_lcs_f_measure_on_words():
    assert lcs_length(["a", "b", "c", "d"], ["a", "c", "d", "e"]) == 3
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == 1.0
    assert rouge_l("completely unrelated words", "the cat sat") == 0.0
    # LCS "the cat the mat" = 4 of 6 reference words, 4 of 5 predicted: F = 2·(4/5)(4/6)/(4/5+4/6)
    assert rouge_l("the cat on the mat", "the cat sat by the mat") == pytest.approx(2 * 0.8 * (4 / 6) / (0.8 + 4 / 6))
    assert rouge_l("Mat, the cat!", "the cat mat") == pytest.approx(2 / 3)  # order matters, case does not
    assert rouge_l("", "") == 1.0 and rouge_l("x", "") == 0.0


def test_code_is_taken_from_fences_when_there_are_any():
    assert extract_code("Here:\n```python\ndef f():\n    return 1\n```\nDone.") == "def f():\n    return 1"
    assert extract_code("def f(): return 1") == "def f(): return 1"


def test_code_tests_pass_and_fail_in_a_separate_process():
    tests = "assert add(2, 3) == 5\nassert add(-1, 1) == 0"
    assert run_code_tests("def add(a, b):\n    return a + b", tests).passed
    failing = run_code_tests("def add(a, b):\n    return a - b", tests)
    assert not failing.passed and "AssertionError" in failing.detail
    broken = run_code_tests("def add(a, b) return", tests)
    assert not broken.passed and "SyntaxError" in broken.detail
    assert not run_code_tests("def add(a, b): return a + b", "").passed  # no tests: never a pass


def test_code_tests_time_out_and_have_no_network():
    slow = run_code_tests("while True:\n    pass", "assert True", timeout_s=1.0)
    assert not slow.passed and "longer than 1 s" in slow.detail
    net = run_code_tests("import socket\nsocket.create_connection(('127.0.0.1', 9))", "assert True")
    assert not net.passed and "network is switched off" in net.detail


def test_each_example_is_better_same_or_worse():
    assert compare_scores(0.2, 0.9, higher_is_better=True) == "better"
    assert compare_scores(0.9, 0.2, higher_is_better=True) == "worse"
    assert compare_scores(0.5, 0.51, higher_is_better=True) == "same"
    assert compare_scores(2.0, 1.0, higher_is_better=False) == "better"  # a loss: lower is better
    assert compare_scores(2.0, 2.01, higher_is_better=False) == "same"
    assert compare_scores(1.0, 1.5, higher_is_better=False) == "worse"


def test_sign_test():
    assert sign_test_p(0, 0) == 1.0
    assert sign_test_p(10, 0) == pytest.approx(2 / 1024)
    assert sign_test_p(5, 5) == 1.0


def test_verdict_wording():
    assert verdict_sentence(Tally(41, 5, 4, "token F1")) == (
        "Better than the base model on 41 of 50 held-out examples (by token F1); worse on 4.")
    assert verdict_sentence(Tally(4, 6, 40, "ROUGE-L")) == (
        "Worse than the base model on 40 of 50 held-out examples (by ROUGE-L); better on 4.")
    assert verdict_sentence(Tally(22, 6, 22, "held-out loss")).startswith(
        "About the same as the base model: better on 22 of 50 held-out examples (by held-out loss), worse on 22")
    assert verdict_sentence(Tally(0, 0, 0, "token F1")) == "Not enough held-out examples to judge."


def test_a_small_sample_is_called_a_rough_guide():
    small = verdict_sentence(tally(["better", "better", "better", "same"], "token F1"))
    assert small.startswith("About the same as the base model: better on 3 of 4")  # 3 of 4 could be chance
    assert small.endswith("Only 4 examples were checked, so take this as a rough guide.")
    clear = verdict_sentence(tally(["better"] * 9 + ["same"] * 3, "token F1"))
    assert clear.startswith("Better than the base model on 9 of 12") and "rough guide" in clear
    assert verdict_sentence(Tally(30, 0, 0, "token F1")) == (
        "Better than the base model on 30 of 30 held-out examples (by token F1); worse on none.")
