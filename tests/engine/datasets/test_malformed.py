"""Bad input of every kind gets a clear report (never an exception), and the right verdict."""

from __future__ import annotations

import codecs
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from studio.engine.datasets import DatasetOptions, inspect_file, iter_examples, prepare_dataset, validate_file
from studio.engine.datasets import readers as readers_module
from studio.engine.errors import ExitCode, StudioError


def jsonl(rows: list[object]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def pc(i: int) -> dict[str, str]:
    return {"prompt": f"Question number {i}?", "completion": f"Answer number {i}."}


@dataclass(frozen=True)
class Case:
    """A malformed (or oddly shaped) file and what the report must say about it."""

    name: str
    content: bytes | None  # None: special (directory / missing)
    usable: bool
    codes: tuple[str, ...]


def _messages(*pairs: tuple[str, str]) -> dict[str, object]:
    return {"messages": [{"role": role, "content": content} for role, content in pairs]}


GOOD = [pc(i) for i in range(12)]  # above MIN_USABLE_EXAMPLES, so only the damage decides
MORE_CSV = "".join(f"Question {i}?,Answer {i}\n" for i in range(10)).encode()  # keeps small CSV cases usable
CORPUS: list[Case] = [
    Case("empty.jsonl", b"", False, ("empty_file",)),
    Case("whitespace.jsonl", b"\n \n\t\n", False, ("empty_file",)),
    Case("binary.jsonl", bytes(range(256)) * 40, False, ("binary_file",)),
    Case("image.json", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200), False, ("binary_file",)),
    Case("sheet.csv", b"PK\x03\x04" + bytes(100), False, ("unsupported_format",)),
    Case("data.jsonl", b"\x1f\x8b\x08\x00" + bytes(50), False, ("unsupported_format",)),
    Case("broken.parquet", b"PAR1" + b"garbage" * 20, False, ("parquet_invalid",)),
    Case("lines.json", jsonl(GOOD).encode(), True, ("wrong_extension",)),
    Case("document.jsonl", json.dumps(GOOD, indent=2).encode(), True, ("wrong_extension",)),
    Case("truncated.json", json.dumps(GOOD, indent=2).encode()[:-40], False, ("json_invalid",)),
    Case("truncated_object.json", b'{"data": [{"prompt": "a", "completion": "b"}', False, ("json_invalid",)),
    Case("bad_syntax.json", b'[{"prompt": "a", "completion": "b"} {"prompt": "c"}]', False, ("json_invalid",)),
    Case("all_bad_lines.jsonl", b"{oops\n{nope, really\n{still no\n", False, ("json_invalid",)),
    Case("numbers.jsonl", b"1\n2\n3.5\n", False, ("unknown_schema",)),
    Case("scalar.json", b"42", False, ("unknown_schema",)),
    Case("nested_lists.jsonl", b"[[1, 2], [3]]\n[[4]]\n[5, [6]]\n", False, ("unknown_schema",)),
    Case(
        "rows_numbers_and_lists.jsonl",
        jsonl([*GOOD, 7, [1, 2], "text", None]).encode(),
        True,
        ("row_not_object",),
    ),
    Case(
        "mixed_schemas.jsonl",
        jsonl(
            [*GOOD, {"instruction": "Say hi", "output": "Hi"}, _messages(("user", "a"), ("assistant", "b"))]
        ).encode(),
        True,
        ("mixed_schemas",),
    ),
    Case(
        "missing_completion.jsonl",
        jsonl([*GOOD, {"prompt": "alone"}, {"prompt": "again"}]).encode(),
        True,
        ("missing_field",),
    ),
    Case(
        "only_prompts.jsonl",
        jsonl([{"prompt": f"p{i}"} for i in range(5)]).encode(),
        False,
        ("unknown_schema",),
    ),
    Case(
        "unknown_columns.jsonl",
        jsonl([{"foo": i, "bar": i * 2} for i in range(5)]).encode(),
        False,
        ("unknown_schema",),
    ),
    Case(
        "empty_answers.jsonl",
        jsonl([{"prompt": f"p{i}", "completion": " "} for i in range(5)]).encode(),
        False,
        ("empty_answer", "no_usable_rows"),
    ),
    Case("empty_list.json", b"[]", False, ("no_rows",)),
    Case("header_only.csv", b"prompt,completion\n", False, ("no_rows",)),
    Case("ragged.csv", b"question,answer\nq1,a1\nq2,a2,extra\nq3\nq4,a4\n" + MORE_CSV, True, ("csv_bad_row",)),
    Case(
        "csv_named.txt",
        b"question,answer\nWhat is 1+1?,2\nWhat is 2+2?,4\nWhat is 3+3?,6\n" + MORE_CSV,
        True,
        ("wrong_extension",),
    ),
    Case(
        "csv_named.jsonl",
        b"question\tanswer\nWhat is 1+1?\t2\nWhat is 2+2?\t4\nWhat is 3+3?\t6\n" + MORE_CSV.replace(b",", b"\t"),
        True,
        ("wrong_extension",),
    ),
    Case(
        "some_bad_lines.jsonl",
        (jsonl(GOOD) + '{"prompt": "cut off", "compl\n').encode(),
        True,
        ("bad_json_line",),
    ),
    Case(
        "latin1.csv",
        "question,answer\ncafé?,olé\nnaïve?,déjà vu\n".encode("latin-1") + MORE_CSV,
        True,
        ("encoding_fallback",),
    ),
    Case("utf16.jsonl", codecs.BOM_UTF16_LE + jsonl(GOOD).encode("utf-16-le"), True, ()),
    Case("utf16_nobom.jsonl", jsonl(GOOD).encode("utf-16-le"), True, ()),
    Case("utf8_bom.csv", codecs.BOM_UTF8 + b"prompt,completion\nHi,Hello\nBye,Goodbye\n" + MORE_CSV, True, ()),
    Case(
        "role_order.jsonl",
        jsonl(
            [
                _messages(("user", "a"), ("assistant", "b")),
                _messages(("assistant", "first"), ("user", "q"), ("assistant", "r")),
                _messages(("user", "q"), ("user", "q2"), ("assistant", "r")),
                *(_messages(("user", f"Question {i}"), ("assistant", f"Answer {i}")) for i in range(10)),
            ]
        ).encode(),
        True,
        ("role_order",),
    ),
    Case(
        "no_answer.jsonl",
        jsonl([_messages(("user", "a"), ("user", "b"))] * 3).encode(),
        False,
        ("no_answer", "no_usable_rows"),
    ),
    Case(
        "unknown_role.jsonl",
        jsonl([_messages(("narrator", "once"), ("assistant", "b"))] * 2).encode(),
        False,
        ("unknown_role",),
    ),
    Case(
        "duplicates.jsonl",
        jsonl([pc(1)] * 4 + [{"prompt": "QUESTION number 1 ?", "completion": "answer number 1"}] + GOOD[2:]).encode(),
        True,
        ("exact_duplicates", "near_duplicates"),
    ),
    Case(
        "personal.jsonl",
        jsonl(
            [
                {"prompt": "Contact?", "completion": "Mail jane.doe@example.com"},
                {"prompt": "Phone?", "completion": "Call +44 20 7946 0958 now"},
                *GOOD,
            ]
        ).encode(),
        True,
        ("pii_email", "pii_phone"),
    ),
    Case("a_folder", None, False, ("is_directory",)),
    Case("missing.jsonl", None, False, ("not_found",)),
]


@pytest.fixture
def corpus(tmp_path: Path) -> list[tuple[Case, Path]]:
    root = tmp_path / "corpus"
    root.mkdir()
    made = []
    for case in CORPUS:
        path = root / case.name
        if case.content is not None:
            path.write_bytes(case.content)
        elif case.name == "a_folder":
            path.mkdir()
        made.append((case, path))
    return made


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 25


@pytest.mark.parametrize("index", range(len(CORPUS)), ids=[case.name for case in CORPUS])
def test_each_malformed_file_gets_a_clear_report(corpus, index):
    case, path = corpus[index]
    report = validate_file(path, use_cache=False)
    codes = {issue.code for issue in report.issues}
    assert report.usable is case.usable, report.render()
    assert set(case.codes) <= codes, report.render()
    for issue in report.issues:
        assert issue.message and issue.suggestion, issue
    if not case.usable:
        assert report.errors, "an unusable file must carry at least one error explaining why"
    rendered = report.render()
    assert ("Not usable" if not case.usable else "Usable") in rendered
    assert report.to_dict()["usable"] is case.usable
    # The quick look agrees and never raises either.
    inspection = inspect_file(path)
    if case.codes and case.codes[0] in {"empty_file", "binary_file", "not_found", "is_directory"}:
        assert not inspection.ok


def test_unusable_files_raise_a_studio_error_with_exit_code_2(corpus):
    for case, path in corpus:
        if case.usable:
            continue
        with pytest.raises(StudioError) as caught:
            prepare_dataset(path)
        assert caught.value.exit_code == ExitCode.DATASET_UNUSABLE
        assert caught.value.code == "dataset_unusable"


def test_row_problems_carry_line_numbers(write):
    rows = [pc(1), {"prompt": "x", "completion": ""}, pc(2), {"prompt": "y", "completion": "  "}]
    report = validate_file(write("d.jsonl", jsonl(rows)), use_cache=False)
    issue = report.issue("empty_answer")
    assert issue is not None and issue.count == 2
    assert [example["line"] for example in issue.examples] == [2, 4]
    assert "2 rows have an empty answer" in issue.message


DEEP = "[" * 5000 + "]" * 5000


def test_json_nested_thousands_deep_is_invalid_json_not_a_crash(write):
    report = validate_file(write("deep.json", DEEP), use_cache=False)
    assert not report.usable
    issue = report.issue("json_invalid")
    assert issue is not None, report.render()
    assert "line 1" in issue.message and "nested too deeply" in issue.message


def test_a_jsonl_line_nested_thousands_deep_is_a_bad_line_with_its_number(write):
    report = validate_file(write("deep.jsonl", jsonl(GOOD) + DEEP + "\n" + jsonl([pc(99)])), use_cache=False)
    issue = report.issue("bad_json_line")
    assert issue is not None, report.render()
    assert [example["line"] for example in issue.examples] == [len(GOOD) + 1]
    assert report.usable and report.rows_usable == len(GOOD) + 1


def test_one_50mb_line_is_skipped_with_a_reason(write):
    huge = '{"prompt": "p", "completion": "' + "a" * (50 << 20) + '"}\n'
    path = write("huge.jsonl", jsonl([pc(1), pc(2)]) + huge + jsonl(GOOD[3:]))
    report = validate_file(path, use_cache=False)
    assert report.usable
    issue = report.issue("row_too_large")
    assert issue is not None and issue.examples[0]["line"] == 3
    assert report.rows_usable == 2 + len(GOOD[3:])


def test_a_single_50mb_record_is_reported_not_loaded(write):
    path = write("one.jsonl", '{"text": "' + "b" * (50 << 20) + '"}')
    report = validate_file(path, use_cache=False)
    assert not report.usable
    assert report.issue("item_too_large") is not None


def test_permission_denied_is_reported(write, monkeypatch):
    path = write("secret.jsonl", jsonl([pc(1)]))
    real_open = Path.open

    def denied(self, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", denied)
    report = validate_file(path, use_cache=False)
    assert not report.usable
    assert report.issue("unreadable") is not None


def test_a_file_vanishing_while_read_is_reported(write, monkeypatch):
    path = write("going.jsonl", jsonl([pc(i) for i in range(2000)]))
    real_jsonl = readers_module._jsonl

    def vanishing(text):
        for count, row in enumerate(real_jsonl(text)):
            if count == 500:
                path.unlink()
                raise FileNotFoundError(2, "No such file or directory")
            yield row

    monkeypatch.setattr(readers_module, "_jsonl", vanishing)
    report = validate_file(path, use_cache=False)
    assert not report.usable
    issue = report.issue("read_failed")
    assert issue is not None and "No such file" in issue.message
    with pytest.raises(StudioError) as caught:
        list(iter_examples(write("going2.jsonl", jsonl([pc(i) for i in range(600)]))))
    assert caught.value.exit_code == ExitCode.DATASET_UNUSABLE


def test_user_mapping_errors_are_explained(write):
    path = write("m.jsonl", jsonl([{"q": "a", "r": "b"}] * 3))
    report = validate_file(path, DatasetOptions(mapping={"q": "user", "nope": "assistant"}), use_cache=False)
    assert not report.usable
    assert "no column 'nope'" in report.issue("bad_mapping").message
    report = validate_file(path, DatasetOptions(mapping={"q": "asker", "r": "assistant"}), use_cache=False)
    assert "'asker'" in report.issue("bad_mapping").message


def test_messages_read_naturally_for_a_single_row(write):
    report = validate_file(write("one.jsonl", jsonl([pc(1), {"prompt": "x", "completion": ""}])), use_cache=False)
    assert report.issue("empty_answer").message == "1 row has an empty answer and was skipped."


def test_a_file_of_bare_values_is_refused_with_the_counts(write):
    report = validate_file(write("bare.jsonl", jsonl([1, 2.5, "hello", None, 7, None, "x", 3])), use_cache=False)
    assert not report.usable, report.render()
    issue = report.issue("too_few_usable") or report.issue("no_usable_rows")
    assert issue is not None and issue.severity == "error", report.render()
    assert "of 8 rows" in issue.message or "None of the 8 rows" in issue.message


def test_nan_and_infinity_text_is_not_content_and_one_usable_row_is_refused(write):
    junk = [{"prompt": p, "completion": c} for p, c in [("nan", "Infinity"), ("null", "None"), ("-inf", "NaN")]]
    rows = [pc(0), *(dict(junk[i % 3], id=i) for i in range(11))]
    report = validate_file(write("nan.jsonl", jsonl(rows)), use_cache=False)
    assert not report.usable and report.rows_usable == 1, report.render()
    issue = report.issue("too_few_usable")
    assert issue is not None and issue.severity == "error", report.render()
    assert issue.message == "Only 1 of 12 rows is a usable example; Studio needs at least 10."
    assert issue.suggestion.count(";") >= 2
    assert report.issue("few_examples") is not None  # the profile's advice stays


def _parquet(path: Path, rows: list[dict[str, object]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def test_parquet_reads_only_the_mapped_columns(tmp_path):
    # An unmapped column (a scanned page, say) over the row cap must not cost the row: it is never read.
    rows = [{**pc(i), "scan": b"\x00" * (17 << 20) if i == 5 else b""} for i in range(12)]
    report = validate_file(_parquet(tmp_path / "wide.parquet", rows), use_cache=False)
    assert report.usable and report.rows_usable == 12, report.render()
    assert report.issue("row_too_large") is None


def test_a_parquet_row_over_the_size_cap_is_skipped_with_a_reason(tmp_path):
    rows = [pc(i) for i in range(12)]
    rows[3] = {"prompt": "p", "completion": "a" * (17 << 20)}
    report = validate_file(_parquet(tmp_path / "huge.parquet", rows), use_cache=False)
    issue = report.issue("row_too_large")
    assert issue is not None and issue.examples[0]["line"] == 4
    assert report.usable and report.rows_usable == 11
