"""Preference data (DPO/ORPO pairs, KTO's labeled answers) is recognised as such, normalized to TRL's
conversational form, and its malformed rows are reported in plain language, never crashed on."""

from __future__ import annotations

import pytest

from studio.engine.datasets import DatasetOptions, inspect_file, iter_examples, parse_mapping, validate_file
from studio.engine.datasets.normalize import normalize_row
from studio.engine.datasets.schemas import match_layout

U, A, S = "user", "assistant", "system"


def msgs(*pairs):
    return [{"role": role, "content": content} for role, content in pairs]


@pytest.mark.parametrize(
    ("row", "schema", "expected"),
    [
        (
            {"prompt": "2+2?", "chosen": "4", "rejected": "5", "system": "Be exact"},
            "preference",
            {"prompt": msgs((S, "Be exact"), (U, "2+2?")), "chosen": msgs((A, "4")), "rejected": msgs((A, "5"))},
        ),
        (  # message lists on every side
            {"prompt": msgs((U, "Hi")), "chosen": msgs((A, "Hello")), "rejected": msgs((A, "Go"))},
            "preference",
            {"prompt": msgs((U, "Hi")), "chosen": msgs((A, "Hello")), "rejected": msgs((A, "Go"))},
        ),
        (  # UltraFeedback: the sides repeat the prompt; the shared turns are the prompt
            {
                "prompt": "Hi",
                "chosen": msgs((U, "Hi"), (A, "Hello")),
                "rejected": msgs((U, "Hi"), (A, "Go")),
            },
            "preference",
            {"prompt": msgs((U, "Hi")), "chosen": msgs((A, "Hello")), "rejected": msgs((A, "Go"))},
        ),
        (  # Anthropic HH: whole conversations only
            {
                "chosen": msgs((U, "a"), (A, "b"), (U, "c"), (A, "good")),
                "rejected": msgs((U, "a"), (A, "b"), (U, "c"), (A, "bad")),
            },
            "preference_conversations",
            {"prompt": msgs((U, "a"), (A, "b"), (U, "c")), "chosen": msgs((A, "good")), "rejected": msgs((A, "bad"))},
        ),
        (  # ShareGPT (LLaMA-Factory): the conversation, then one chosen and one rejected turn
            {
                "conversations": [{"from": "human", "value": "Q"}],
                "chosen": {"from": "gpt", "value": "good"},
                "rejected": {"from": "gpt", "value": "bad"},
            },
            "preference_sharegpt",
            {"prompt": msgs((U, "Q")), "chosen": msgs((A, "good")), "rejected": msgs((A, "bad"))},
        ),
        (
            {"instruction": "Add", "input": "2 and 3", "chosen": "5", "rejected": "6"},
            "preference_instruction",
            {"prompt": msgs((U, "Add\n\n2 and 3")), "chosen": msgs((A, "5")), "rejected": msgs((A, "6"))},
        ),
        (
            {"prompt": "Q", "completion": "A", "label": True},
            "kto",
            {"prompt": msgs((U, "Q")), "completion": msgs((A, "A")), "label": True},
        ),
        (  # CSV cells hold labels as text
            {"prompt": "Q", "completion": "A", "label": "false"},
            "kto",
            {"prompt": msgs((U, "Q")), "completion": msgs((A, "A")), "label": False},
        ),
    ],
)
def test_preference_layouts_normalize_to_trl_form(row, schema, expected):
    found = match_layout(row)
    assert found is not None and found.name == schema
    outcome = normalize_row(row, found)
    assert outcome.example == expected, outcome


def test_a_chosen_rejected_file_is_preference_data_not_sft(write_jsonl):
    rows = [{"prompt": f"Q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(12)]
    inspection = inspect_file(write_jsonl("pairs.jsonl", rows))
    assert (inspection.schema, inspection.kind) == ("preference", "preference")
    assert inspection.schema_label == "preference pairs (prompt/chosen/rejected)"
    kto = inspect_file(write_jsonl("kto.jsonl", [{"prompt": "Q", "completion": "A", "label": i % 2 == 0}
                                                 for i in range(12)]))
    assert (kto.schema, kto.kind) == ("kto", "unpaired")  # boolean labels are not "a column of numbers"
    # "chosen" without "rejected" is still an answer to learn from
    sft = inspect_file(write_jsonl("sft.jsonl", [{"question": f"Q{i}", "chosen": "A"} for i in range(12)]))
    assert sft.kind == "conversation" and sft.mapping == {"question": "user", "chosen": "assistant"}


def test_malformed_preference_rows_are_reported_not_crashed_on(write_jsonl, tiny_model_dir):
    rows = [{"prompt": f"What is {i} plus one?", "chosen": f"{i + 1}.", "rejected": "No idea."} for i in range(12)]
    rows += [
        {"prompt": "Same", "chosen": "x", "rejected": "x"},
        {"prompt": "Empty", "chosen": "", "rejected": "y"},
        {"prompt": "Empty list", "chosen": "a", "rejected": []},
        {"prompt": "Odd", "chosen": {"weird": 1}, "rejected": "y"},
        {"prompt": "Odd too", "chosen": "a", "rejected": [1, 2]},
        {"prompt": "Not an answer", "chosen": msgs((U, "hm")), "rejected": "y"},
        {"prompt": "", "chosen": "a", "rejected": "b"},
        {"chosen": "a", "rejected": "b"},  # no prompt at all
        "not a row",
    ]
    options = DatasetOptions(tokenizer_path=tiny_model_dir)
    report = validate_file(write_jsonl("pairs.jsonl", rows), options, use_cache=False)
    assert report.usable and report.kind == "preference"
    assert report.rows_usable == 12 and report.rows_skipped == 9
    counts = {issue.code: issue.count for issue in report.issues}
    assert counts["same_answers"] == 1 and counts["empty_side"] == 2 and counts["bad_side"] == 3
    assert counts["empty_prompt"] == 2 and counts["row_not_object"] == 1
    same = report.issue("same_answers")
    assert same is not None and "same chosen and rejected answer" in same.message and same.suggestion
    assert same.examples[0]["line"] == 13


def test_kto_labels_that_are_not_true_or_false_are_reported(write_jsonl):
    rows = [{"prompt": f"Q{i}", "completion": f"A{i}", "label": i % 2 == 0} for i in range(12)]
    rows.append({"prompt": "Q", "completion": "A", "label": "maybe"})
    report = validate_file(write_jsonl("kto.jsonl", rows), use_cache=False)
    issue = report.issue("bad_label")
    assert report.rows_usable == 12 and issue is not None and issue.count == 1 and "maybe" in issue.message
    labels = [example["label"] for example in iter_examples(report.path)]
    assert labels == [i % 2 == 0 for i in range(12)]


def test_token_statistics_count_the_longer_side_with_its_prompt(write_jsonl, tiny_model_dir):
    from transformers import AutoTokenizer

    rows = [{"prompt": f"Question {i}", "chosen": "yes", "rejected": "no, " + "and no " * (i + 1)} for i in range(12)]
    path = write_jsonl("pairs.jsonl", rows)
    report = validate_file(path, DatasetOptions(tokenizer_path=tiny_model_dir), use_cache=False)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    exact = [
        max(len(tokenizer.apply_chat_template([*pair["prompt"], *pair[side]])["input_ids"])
            for side in ("chosen", "rejected"))
        for pair in iter_examples(path)
    ]
    assert report.stats is not None and report.stats.examples == 12
    assert report.stats.total_tokens == sum(exact) and report.stats.max == max(exact)


def test_a_user_mapping_can_name_preference_columns(write_jsonl):
    rows = [{"q": f"Q{i}", "good": f"g{i}", "bad": f"b{i}"} for i in range(12)]
    path = write_jsonl("custom.jsonl", rows)
    pairs = DatasetOptions(mapping=parse_mapping(["q=user", "good=chosen", "bad=rejected"]))
    report = validate_file(path, pairs, use_cache=False)
    assert report.kind == "preference" and report.rows_usable == 12
    half = validate_file(path, DatasetOptions(mapping=parse_mapping(["q=user", "good=chosen"])), use_cache=False)
    problem = half.issue("bad_mapping")
    assert problem is not None and "both a 'chosen' column and a 'rejected' column" in problem.message


def test_a_pair_previews_through_the_chat_template_with_both_answers(write_jsonl, tiny_model_dir):
    from studio.engine.datasets import render_preview

    pairs = write_jsonl("pairs.jsonl", [{"prompt": "2+2?", "chosen": "Four.", "rejected": "Five."}])
    (pair,) = render_preview(iter_examples(pairs), tiny_model_dir, n=1)
    assert not pair.error and pair.label is None
    assert pair.trained_text.startswith("Four.") and "2+2?" in pair.text and "2+2?" not in pair.trained_text
    rejected = "".join(text for text, trained in pair.rejected if trained)
    assert rejected.startswith("Five.") and "rejected" in pair.to_dict()
    labeled = write_jsonl("kto.jsonl", [{"prompt": "2+2?", "completion": "Five.", "label": False}])
    (answer,) = render_preview(iter_examples(labeled), tiny_model_dir, n=1)
    assert answer.trained_text.startswith("Five.") and answer.label is False and not answer.rejected
    assert answer.to_dict()["label"] is False
