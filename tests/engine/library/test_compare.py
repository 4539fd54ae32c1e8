"""Comparison of real runs: curves on both axes, metrics with the best marked, and a diff of what differs."""

from __future__ import annotations

import math

import pytest

from studio.engine.errors import StudioError
from studio.engine.library.compare import compare_runs, config_diff

STEPS = 3


def test_config_diff_shows_only_what_differs(library):
    diff = {row.field: row.values for row in config_diff([library.parent, library.child])}
    assert diff == {
        "learning_rate": {library.parent.id: 5e-3, library.child.id: 1e-3},
        "lora_r": {library.parent.id: 4, library.child.id: 8},
    }


def test_curves_by_step_and_by_tokens(library):
    by_step = compare_runs([library.parent, library.child], axis="step")
    for curves in by_step.curves:
        assert [x for x, _ in curves.loss] == [1.0, 2.0, 3.0]
        assert [x for x, _ in curves.eval_loss] == [1.0, 2.0, 3.0]
        assert all(math.isfinite(y) for _, y in curves.loss + curves.eval_loss)
    by_tokens = compare_runs([library.parent, library.child], axis="tokens")
    for curves in by_tokens.curves:
        xs = [x for x, _ in curves.loss]
        assert len(xs) == STEPS and xs == sorted(xs) and xs[0] > 1  # tokens seen grow with every step


def test_metrics_table_marks_the_best(library):
    comparison = compare_runs([library.parent, library.child])
    table = comparison.metrics
    best_eval = table.values["best_eval_loss"]
    assert set(best_eval) == {library.parent.id, library.child.id}
    assert all(v is not None for v in best_eval.values())
    assert table.best["best_eval_loss"] == [min(best_eval, key=lambda rid: best_eval[rid])]
    assert table.best["steps"] == []  # neither more nor fewer steps is "better"
    data = comparison.to_dict()
    assert {m["key"] for m in data["metrics"]} >= {"best_eval_loss", "wall_s", "peak_memory"}
    assert [row["field"] for row in data["config_diff"]] == ["lora_r", "learning_rate"]


def test_compare_needs_two_to_five_runs(library):
    with pytest.raises(StudioError) as info:
        compare_runs([library.parent])
    assert info.value.code == "compare_run_count"
