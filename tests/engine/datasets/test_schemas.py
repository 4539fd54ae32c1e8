"""Every recognized layout maps to the one conversation form; ambiguous columns get an overridable guess."""

from __future__ import annotations

import pytest

from studio.engine.datasets import DatasetOptions, inspect_file, iter_examples, parse_mapping, validate_file
from studio.engine.datasets.normalize import normalize_row
from studio.engine.datasets.schemas import match_layout, propose_schema

U, A, S = "user", "assistant", "system"


def conv(*pairs):
    return {"messages": [{"role": role, "content": content} for role, content in pairs]}


@pytest.mark.parametrize(
    ("row", "schema", "expected"),
    [
        (
            {"instruction": "Add", "input": "2 and 3", "output": "5"},
            "alpaca",
            conv((U, "Add\n\n2 and 3"), (A, "5")),
        ),
        ({"instruction": "Say hi", "input": "", "output": "Hi"}, "alpaca", conv((U, "Say hi"), (A, "Hi"))),
        (
            {"prompt": "P", "completion": "C", "system": "Be kind"},
            "prompt_completion",
            conv((S, "Be kind"), (U, "P"), (A, "C")),
        ),
        ({"question": "Q?", "answer": "A.", "context": "Ctx"}, "qa", conv((U, "Ctx\n\nQ?"), (A, "A."))),
        (
            {
                "conversations": [
                    {"from": "system", "value": "sys"},
                    {"from": "human", "value": "hi"},
                    {"from": "gpt", "value": "yo"},
                ]
            },
            "sharegpt",
            conv((S, "sys"), (U, "hi"), (A, "yo")),
        ),
        (conv((S, "s"), (U, "u"), (A, "a")), "openai", conv((S, "s"), (U, "u"), (A, "a"))),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "part"}]},
                    {"role": "assistant", "content": "ok"},
                ]
            },
            "openai",
            conv((U, "part"), (A, "ok")),
        ),
        ({"text": "  Some document.  "}, "text", {"text": "Some document."}),
    ],
)
def test_layouts_normalize_to_one_form(row, schema, expected):
    found = match_layout(row)
    assert found is not None and found.name == schema
    outcome = normalize_row(row, found)
    assert outcome.example == expected, outcome


def test_ambiguous_columns_get_a_proposed_mapping_that_can_be_overridden(write_jsonl):
    path = write_jsonl("odd.jsonl", [{"query": f"q{i}", "response": f"r{i}", "id": i} for i in range(12)])
    inspection = inspect_file(path)
    assert inspection.guessed
    assert inspection.mapping == {"query": "user", "response": "assistant"}
    assert any(issue.code == "guessed_mapping" for issue in inspection.issues)
    swapped = list(iter_examples(path, mapping={"response": "user", "query": "assistant"}))
    assert swapped[0] == conv((U, "r0"), (A, "q0"))
    swapped_roles = DatasetOptions(mapping=parse_mapping(["response=user", "query=assistant"]))
    report = validate_file(path, swapped_roles, use_cache=False)
    assert report.usable and report.schema == "custom"


def test_two_unnamed_text_columns_are_guessed_by_position():
    schema, guessed = propose_schema([{"a": "x", "b": "y"}] * 3)
    assert guessed and schema is not None and schema.mapping == {"a": "user", "b": "assistant"}


def test_role_order_problems_are_flagged_and_trailing_user_turns_dropped():
    schema = match_layout(["messages"])
    outcome = normalize_row(conv((A, "hello"), (U, "q"), (A, "r"), (U, "dangling")), schema)
    assert outcome.example == conv((A, "hello"), (U, "q"), (A, "r"))
    details = {detail for code, detail in outcome.notes if code == "role_order"}
    assert details == {"starts with the assistant", "ends with a user message"}
    assert normalize_row(conv((U, "q"), (U, "q2")), schema).problem == "no_answer"
    assert normalize_row(conv((U, "q"), (A, "")), schema).problem == "empty_answer"


def test_numbers_become_text_with_a_note():
    schema = match_layout(["question", "answer"])
    outcome = normalize_row({"question": "6 x 7?", "answer": 42}, schema)
    assert outcome.example == conv((U, "6 x 7?"), (A, "42"))
    assert ("non_text_value", "int") in outcome.notes


def test_text_profile_mismatch_and_few_examples_are_explained(write, write_jsonl):
    text = write("notes.txt", "".join(f"Document number {i}.\n\n" for i in range(12)))
    report = validate_file(text, DatasetOptions(profile="chatbot"), use_cache=False)
    assert report.usable and report.kind == "text"
    assert "plain text" in report.issue("profile_mismatch").message
    assert "weak for Chatbot" in report.issue("few_examples").message
    assert "200" in report.issue("few_examples").suggestion
    pairs = write_jsonl("pairs.jsonl", [{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(60)])
    report = validate_file(pairs, DatasetOptions(profile="domain"), use_cache=False)
    assert report.issue("profile_mismatch") is not None


def test_split_proposal_scales_with_size(write_jsonl):
    small = validate_file(write_jsonl("s.jsonl", [{"text": f"t{i}"} for i in range(20)]), use_cache=False)
    assert (small.split.train, small.split.eval) == (20, 0)
    big = validate_file(write_jsonl("b.jsonl", [{"text": f"t{i}"} for i in range(500)]), use_cache=False)
    assert (big.split.train, big.split.eval) == (450, 50)


def test_columns_of_only_numbers_are_not_guessed_as_messages_unless_mapped(write_jsonl):
    rows = [{"question": i, "answer": i * 2.5} for i in range(12)]
    assert propose_schema(rows)[0] is None
    assert propose_schema([{"query": i, "response": -i} for i in range(12)])[0] is None
    path = write_jsonl("numbers.jsonl", rows)
    assert validate_file(path, use_cache=False).issue("unknown_schema") is not None  # the mapping hint
    roles = DatasetOptions(mapping=parse_mapping(["question=user", "answer=assistant"]))
    explicit = validate_file(path, roles, use_cache=False)
    assert explicit.mapping == {"question": "user", "answer": "assistant"} and explicit.rows_usable == 12
    mixed, guessed = propose_schema([{"query": f"q{i}", "response": f"a{i}", "id": i} for i in range(3)])
    assert guessed and mixed is not None and mixed.mapping == {"query": "user", "response": "assistant"}
