"""Format and encoding detection, the streaming readers, and fuzzing them with hypothesis."""

from __future__ import annotations

import codecs
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from studio.engine.datasets import inspect_file, iter_examples, validate_file
from studio.engine.datasets import jsonstream as jsonstream_module
from studio.engine.datasets.detect import detect
from studio.engine.datasets.encoding import CP1252, UTF8, UTF8_BOM, UTF16, UTF16_BE, UTF16_LE, detect_encoding
from studio.engine.datasets.jsonstream import JsonStream, JsonStreamError
from studio.engine.datasets.readers import CHUNK_CHARS, RowReader
from studio.engine.datasets.schemas import RECORD_KEYS
from studio.engine.progress import Callbacks

# Sentences with the same number of commas on every line: the sniffer sees a 7-column table.
PROSE = "".join(f"On day {i}, we walked, talked, ate, read, slept, and rested. Then home.\n" for i in range(8))
ROWS = [{"prompt": f"Question {i}?", "completion": f"Answer {i}."} for i in range(5)]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"a": "caf\xc3\xa9"}', UTF8),
        (codecs.BOM_UTF8 + b"x,y", UTF8_BOM),
        (codecs.BOM_UTF16_LE + "hello".encode("utf-16-le"), UTF16),
        ("hello world, how are you".encode("utf-16-le"), UTF16_LE),
        ("hello world, how are you".encode("utf-16-be"), UTF16_BE),
        (b"caf\xe9 ol\xe9", CP1252),
        ("“Quoted” – costs 5 € … ’tis".encode("cp1252"), CP1252),
        (b"ab\x00\x01\x02\x03\xff\xfe" * 100, None),
    ],
)
def test_encoding_detection(data, expected):
    assert detect_encoding(data) == expected


def test_cyrillic_windows_text_is_not_taken_for_western():
    found = detect_encoding("Привет, как дела? Это тест на кириллицу, и он длиннее.\n".encode("cp1251"))
    assert found is not None and found.name == "cp1251" and found.fallback


def test_windows_1252_curly_quotes_euro_and_dashes_survive_validation(write):
    rows = "".join(f"“Price {i}?”,It costs {i} € – ‘cheap’ … really\n" for i in range(12))
    path = write("win.csv", ("question,answer\n" + rows).encode("cp1252"))
    report = validate_file(path, use_cache=False)
    assert report.usable and report.encoding == CP1252.label
    fallback = report.issue("encoding_fallback")
    assert fallback is not None and "Windows-1252" in fallback.message
    answers = [example["messages"][1]["content"] for example in iter_examples(path)]
    assert answers[0] == "It costs 0 € – ‘cheap’ … really"
    assert not any(0x80 <= ord(char) <= 0x9F for answer in answers for char in answer)


def test_utf8_cut_mid_character_at_the_head_limit_is_still_utf8():
    assert detect_encoding("é".encode() * 10 + "é".encode()[:1]) == UTF8


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [
        ("a.jsonl", "".join(json.dumps(r) + "\n" for r in ROWS), "jsonl"),
        ("a.txt", "".join(json.dumps(r) + "\n" for r in ROWS), "jsonl"),
        ("a.json", json.dumps(ROWS, indent=1), "json"),
        ("a.data", json.dumps({"data": ROWS}), "json"),
        ("a.csv", "prompt,completion\n" + "".join(f"q{i},a{i}\n" for i in range(5)), "csv"),
        ("a.tsv", "prompt\tcompletion\n" + "".join(f"q{i}\ta{i}\n" for i in range(5)), "csv"),
        ("a.dat", "prompt;completion\n" + "".join(f"q{i};a{i}\n" for i in range(5)), "csv"),
        ("one.csv", "text\nHello there, friend.\nSecond document.\n", "csv"),
        ("a.txt", "Plain prose, with a comma.\nAnother line here.\n\nSecond document, also prose.\n", "txt"),
        ("prose.txt", PROSE, "txt"),
        ("table.txt", "prompt,completion\n" + "".join(f'"Question {i}, ok?","Answer {i}."\n' for i in range(5)), "csv"),
        ("plain_table.txt", "prompt,completion\n" + "".join(f"q{i},a{i}\n" for i in range(5)), "csv"),
    ],
)
def test_format_is_detected_by_content(write, name, content, fmt):
    assert detect(write(name, content)).format == fmt


def test_csv_delimiter_and_header_sniffing(write):
    detection = detect(write("semi.csv", "question;answer\n" + "".join(f"q{i};a{i}\n" for i in range(4))))
    assert (detection.delimiter, detection.has_header) == (";", True)
    headerless = write("nohead.csv", "".join(f"What is {i} plus {i}?,{i + i}\n" for i in range(6)))
    detection = detect(headerless)
    assert detection.has_header is False
    inspection = inspect_file(headerless)
    assert inspection.columns == ["column_1", "column_2"]
    assert inspection.mapping == {"column_1": "user", "column_2": "assistant"}
    assert inspection.guessed


def test_csv_quoted_fields_with_newlines_keep_their_line_numbers(write):
    path = write("q.csv", 'prompt,completion\n"multi\nline",ok\nsecond,fine\n')
    rows = list(RowReader(detect(path)))
    assert [(row.line, row.value["prompt"]) for row in rows] == [(2, "multi\nline"), (4, "second")]


def test_json_object_holding_a_list_streams_its_records_with_line_numbers(write):
    path = write("wrapped.json", json.dumps({"version": 2, "data": ROWS}, indent=2))
    rows = list(RowReader(detect(path)))
    assert [row.value for row in rows] == ROWS
    assert rows[0].line == 4 and rows[1].line > rows[0].line


def test_a_single_record_object_is_one_row(write):
    record = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}
    rows = list(RowReader(detect(write("one.json", json.dumps(record, indent=2)))))
    assert [row.value for row in rows] == [record]


def test_json_stream_crosses_chunk_boundaries(monkeypatch):
    monkeypatch.setattr(jsonstream_module, "CHUNK_CHARS", 7)
    values = [{"n": 123456789, "s": "x" * 30}, [1.5e10, None, True], "tail", 98765]
    text = json.dumps(values, indent=1)
    assert [value for _, value in JsonStream(io.StringIO(text), RECORD_KEYS)] == values
    with pytest.raises(JsonStreamError):
        list(JsonStream(io.StringIO(text[:-5]), RECORD_KEYS))


def test_text_documents_and_chunks(write):
    docs = write("docs.txt", "First doc line one.\nline two.\n\n\nSecond doc.\n")
    rows = list(RowReader(detect(docs)))
    assert [(row.line, row.value["text"]) for row in rows] == [
        (1, "First doc line one.\nline two."),
        (5, "Second doc."),
    ]
    prose = " ".join(f"Sentence number {i} is here." for i in range(600))
    rows = list(RowReader(detect(write("run.txt", prose))))
    assert len(rows) > 1
    assert all(len(row.value["text"]) <= CHUNK_CHARS for row in rows)
    assert " ".join(row.value["text"] for row in rows).split() == prose.split()


def test_parquet_is_read_in_batches(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS * 500), path, row_group_size=700)
    report = validate_file(path, use_cache=False)
    assert report.format == "parquet" and report.schema == "prompt_completion"
    assert report.rows_read == 2500 and report.rows_usable == 5 and report.duplicates_removed == 2495


def test_progress_is_reported_and_cancellation_stops(write):
    path = write("big.jsonl", "".join(json.dumps({"text": f"row {i}"}) + "\n" for i in range(20000)))
    seen: list[float] = []
    validate_file(path, task=Callbacks(lambda _m, f: seen.append(f)), use_cache=False)
    assert seen[-1] == 1.0 and all(0.0 <= f <= 1.0 for f in seen)
    from studio.engine.errors import StudioError

    with pytest.raises(StudioError) as caught:
        validate_file(path, task=Callbacks(stop_requested=lambda: True), use_cache=False)
    assert caught.value.code == "cancelled"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
record = st.fixed_dictionaries(
    {},
    optional={
        "prompt": json_values,
        "completion": json_values,
        "messages": json_values,
        "text": json_values,
        "instruction": json_values,
        "output": json_values,
    },
)
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(st.binary(max_size=600), st.sampled_from([".jsonl", ".json", ".csv", ".txt", ".parquet", ""]))
def test_fuzz_arbitrary_bytes_never_crash(tmp_path, data, suffix):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)
    report = validate_file(path, use_cache=False)
    assert report.usable is (report.rows_usable > 0 and not report.errors)
    assert isinstance(report.render(), str)
    json.dumps(report.to_dict())
    inspect_file(path)


@FUZZ
@given(st.lists(record | json_values, max_size=8), st.booleans())
def test_fuzz_json_records_never_crash(tmp_path, rows, as_lines):
    path = tmp_path / ("f.jsonl" if as_lines else "f.json")
    text = "".join(json.dumps(r) + "\n" for r in rows) if as_lines else json.dumps(rows)
    path.write_text(text, encoding="utf-8")
    report = validate_file(path, use_cache=False)
    assert report.rows_usable + report.rows_skipped + report.duplicates_removed == report.rows_read
    json.dumps(report.to_dict())


@FUZZ
@given(st.lists(json_values, max_size=10))
def test_fuzz_json_stream_round_trips(values):
    text = json.dumps(values, indent=1)
    assert [value for _, value in JsonStream(io.StringIO(text), RECORD_KEYS)] == values


@FUZZ
@given(
    st.lists(
        st.lists(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12), min_size=2, max_size=3),
        max_size=8,
    )
)
def test_fuzz_csv_never_crashes(tmp_path, table):
    import csv

    path = tmp_path / "f.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows([["prompt", "completion"], *table])
    report = validate_file(path, use_cache=False)
    json.dumps(report.to_dict())
