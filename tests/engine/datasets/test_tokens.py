"""Token statistics, the chat-template preview, the prepared dataset and its cache."""

from __future__ import annotations

import shutil
import time

import pytest

from studio.engine.datasets import (
    DatasetOptions,
    estimate_steps_per_epoch,
    iter_examples,
    prepare_dataset,
    render_preview,
    sample_path,
    validate_file,
)
from studio.engine.datasets.stats import suggest_max_length, summarize
from studio.engine.errors import ExitCode, StudioError
from studio.engine.progress import Callbacks


def test_summary_percentiles_and_histogram():
    from array import array

    stats = summarize(array("I", range(1, 101)), "tok", max_length=90)
    assert (stats.p50, stats.p90, stats.p99, stats.max, stats.min) == (50, 90, 99, 100, 1)
    assert stats.total_tokens == 5050 and stats.over_max_length == 10 and stats.over_max_length_share == 0.1
    assert sum(stats.histogram["counts"]) == 100
    assert stats.histogram["edges"][0] == 0 and stats.histogram["edges"][-1] > 100
    assert stats.truncated_tokens == sum(range(1, 11))
    assert summarize(array("I"), "tok", None) is None


def test_steps_per_epoch_and_suggested_length():
    assert estimate_steps_per_epoch(1000, 4, 4) == 63
    assert estimate_steps_per_epoch(16, 4, 4) == 1
    assert estimate_steps_per_epoch(0, 4, 4) == 0
    assert suggest_max_length(151) == 192 and suggest_max_length(10) == 64


def test_token_lengths_match_the_chat_template_exactly(tiny_model_dir, write_jsonl):
    from transformers import AutoTokenizer

    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Question {i} " * (i + 1)},
                {"role": "assistant", "content": "Yes."},
            ]
        }
        for i in range(30)
    ]
    path = write_jsonl("t.jsonl", rows)
    report = validate_file(path, DatasetOptions(tokenizer_path=tiny_model_dir, max_length=40), use_cache=False)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    normalized = list(iter_examples(path))  # stripped contents, as training sees them
    exact = [len(tokenizer.apply_chat_template(r["messages"])["input_ids"]) for r in normalized]
    assert report.stats.total_tokens == sum(exact)
    assert report.stats.max == max(exact) and report.stats.min == min(exact)
    too_long = report.issue("too_long")
    assert too_long.count == sum(1 for n in exact if n > 40)
    assert "maximum length of 40 tokens" in too_long.message
    first_long = next(i for i, n in enumerate(exact) if n > 40)
    assert too_long.examples[0]["line"] == first_long + 1


def test_preview_marks_only_assistant_answers_as_trained(tiny_model_dir):
    example = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi?"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Bye?"},
            {"role": "assistant", "content": "Bye!"},
        ]
    }
    (preview,) = render_preview([example, {"text": "ignored"}], tiny_model_dir, n=1)
    trained = [text for text, flag in preview.segments if flag]
    assert trained == ["Hello!<|im_end|>\n", "Bye!<|im_end|>\n"]
    assert "<|im_start|>assistant\n" in preview.text and "Hi?" not in preview.trained_text
    assert preview.tokens > 0


def test_preview_falls_back_to_chatml_without_a_template(tiny_model_dir, tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_model_dir / name, bare / name)
    (preview,) = render_preview(
        [{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}], bare
    )
    assert preview.text == "<|im_start|>user\nQ<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
    assert preview.trained_text == "A<|im_end|>\n"
    (text,) = render_preview([{"text": "Plain."}], bare)
    assert text.segments[0][1] is True and text.text.startswith("Plain.")


def test_prepare_splits_dedupes_and_caches(tiny_model_dir, write_jsonl):
    rows = [{"prompt": f"p{i}", "completion": f"c{i}"} for i in range(120)] + [{"prompt": "p1", "completion": "c1"}]
    path = write_jsonl("d.jsonl", rows)
    options = DatasetOptions(eval_fraction=0.1, seed=1, tokenizer_path=tiny_model_dir, max_length=64)
    started = time.monotonic()
    first = prepare_dataset(path, options)
    cold = time.monotonic() - started
    assert len(first.train) == 108 and len(first.eval) == 12
    assert first.train.column_names == ["messages"]
    assert first.train[0]["messages"][0] == {
        "role": "user",
        "content": first.train[0]["messages"][0]["content"],
    }
    assert first.report.duplicates_removed == 1 and first.report.stats is not None
    everything = {row["messages"][0]["content"] for row in first.train} | {
        row["messages"][0]["content"] for row in first.eval
    }
    assert len(everything) == 120
    started = time.monotonic()
    again = prepare_dataset(path, options)
    assert time.monotonic() - started < max(0.5, cold / 2)
    assert again.folder == first.folder and again.content_hash == first.content_hash
    assert again.eval["messages"] == first.eval["messages"]
    path.write_text(path.read_text() + '{"prompt": "new", "completion": "row"}\n')
    changed = prepare_dataset(path, options)
    assert changed.content_hash != first.content_hash and len(changed.train) + len(changed.eval) == 121


def test_prepare_text_and_tiny_datasets(write):
    docs = [f"Document number {i}." for i in range(12)]
    prepared = prepare_dataset(write("doc.txt", "\n\n".join(docs) + "\n"))
    assert prepared.train.column_names == ["text"] and prepared.eval is None
    assert prepared.train["text"] == docs
    with pytest.raises(StudioError) as caught:
        prepare_dataset(write("bad.jsonl", '{"prompt": "only"}\n'))
    assert caught.value.exit_code == ExitCode.DATASET_UNUSABLE


def test_validation_cache_is_keyed_by_content_and_settings(write_jsonl):
    path = write_jsonl("c.jsonl", [{"text": f"t{i}"} for i in range(50)])
    first = validate_file(path)
    calls = []
    second = validate_file(path, task=Callbacks(lambda m, f: calls.append(m)))
    assert second.to_dict() == first.to_dict() and calls == ["Validated (unchanged since last time)"]
    assert validate_file(path, DatasetOptions(profile="chatbot")).profile == "chatbot"


@pytest.mark.slow
def test_real_model_statistics_on_the_chatbot_sample(builtin_model_dir):
    """The built-in SmolLM2 tokenizer: the Pip sample is short enough for fast CPU training."""
    options = DatasetOptions(tokenizer_path=builtin_model_dir, max_length=256)
    report = validate_file(sample_path("chatbot"), options, use_cache=False)
    assert report.usable and report.rows_usable >= 300
    assert report.stats.over_max_length == 0 and report.stats.p99 < 200
    previews = render_preview(iter_examples(sample_path("chatbot")), builtin_model_dir, n=3)
    for preview in previews:
        assert preview.trained_text.startswith("Pip here!")
        assert "\nTip: " in preview.trained_text


def test_conversations_a_strict_template_refuses_are_skipped_not_fatal(tiny_model_dir, tmp_path, write_jsonl):
    strict = tmp_path / "strict"
    shutil.copytree(tiny_model_dir, strict, ignore=shutil.ignore_patterns("*.safetensors"))
    (strict / "chat_template.jinja").write_text(
        "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}"
        "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}"
        "[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}",
        encoding="utf-8",
    )
    good = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}
    bad = {
        "messages": [
            {"role": "user", "content": "q"},
            {"role": "user", "content": "q2"},
            {"role": "assistant", "content": "a"},
        ]
    }
    more = [
        {"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]}
        for i in range(10)
    ]
    path = write_jsonl("mixed.jsonl", [good, bad, {"messages": [*good["messages"], *good["messages"]]}, *more])
    report = validate_file(path, DatasetOptions(tokenizer_path=strict), use_cache=False)
    assert report.usable and report.rows_usable == 12 and report.stats.examples == 12
    issue = report.issue("template_rejected")
    assert issue.count == 1 and issue.examples[0]["line"] == 2 and "alternate" in issue.message
    previews = render_preview([good, bad], strict, n=2)
    # This template has no generation prompt, so the assistant's tag is part of its turn.
    assert previews[0].trained_text == "[assistant] a\n" and "alternate" in previews[1].error
