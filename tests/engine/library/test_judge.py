"""The optional LLM judge: off by default, its A/B decision logic, and the endpoint client against a local
http.server on 127.0.0.1 (never the network)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from studio.engine.library.judge import (
    JudgeResult,
    JudgeSettings,
    judge_pairs,
    judge_prompt,
    load_settings,
    outcome_of,
    parse_pick,
    run_judge,
    save_settings,
)
from tests.local_http import JsonHandler, serving, url_of

EXAMPLES = [{"prompt": f"What is {i} plus 1?", "reference": f"{i + 1}", "base": "no idea", "tuned": f"{i + 1}"}
            for i in range(4)]


def test_the_judge_is_off_by_default(studio_home: Path):
    settings = load_settings()
    assert settings.kind == "off" and not settings.enabled
    assert run_judge(settings, EXAMPLES) is None
    (studio_home / "judge.json").write_text("not json", encoding="utf-8")
    assert load_settings().kind == "off"
    save_settings(JudgeSettings(kind="endpoint", url="http://127.0.0.1:1/v1"))
    assert load_settings().enabled


def test_replies_are_parsed_and_mapped_back_through_the_alternating_order():
    assert parse_pick("A") == "A" and parse_pick(" b.") == "B" and parse_pick("TIE") == "tie"
    assert parse_pick("Answer A is better") == "A"
    assert parse_pick("I cannot decide") is None
    text, tuned_first = judge_prompt("q", "r", "base answer", "tuned answer", 0)
    assert not tuned_first and text.index("base answer") < text.index("tuned answer")
    _text, tuned_first = judge_prompt("q", "r", "base answer", "tuned answer", 1)
    assert tuned_first
    assert outcome_of("A", tuned_first=True) == "better" and outcome_of("A", tuned_first=False) == "worse"
    assert outcome_of("B", tuned_first=False) == "better" and outcome_of(None, True) == "same"


def test_a_judge_that_always_prefers_the_first_answer_calls_it_even():
    result = judge_pairs(lambda _prompt: "A", EXAMPLES, "test")
    assert result.tally is not None and (result.tally.better, result.tally.worse) == (2, 2)
    fond_of_base = judge_pairs(lambda p: "B" if "no idea" in p.split("Answer B:")[1] else "A", EXAMPLES, "test")
    assert fond_of_base.tally is not None and fond_of_base.tally.worse == 4  # it always picked "no idea"
    assert JudgeResult.from_dict(fond_of_base.to_dict()) == fond_of_base


class _Judge(JsonHandler):
    seen: ClassVar[list[dict[str, object]]] = []

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        body = self.read_json()
        _Judge.seen.append(body)
        content = body["messages"][0]["content"]
        tuned_is_a = "no idea" in content.split("Answer B:")[1]  # the base's "no idea" is answer B
        self.send_json(200, {"choices": [{"message": {"content": "A" if tuned_is_a else "B"}}]})


@pytest.fixture
def endpoint() -> Iterator[str]:
    with serving(_Judge) as server:
        yield f"{url_of(server)}/v1"


def test_an_endpoint_judge_on_localhost(endpoint: str):
    result = run_judge(JudgeSettings(kind="endpoint", url=endpoint, model="local"), EXAMPLES)
    assert result is not None and result.tally is not None and result.error == ""
    assert result.tally.better == 4  # the test judge always picks the answer that is not "no idea"
    assert _Judge.seen[-1]["model"] == "local" and _Judge.seen[-1]["temperature"] == 0
    assert result.sentence.startswith(f"Judge (the endpoint {endpoint}): ")


def test_an_unreachable_endpoint_is_a_message_not_a_crash():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_judge(JudgeSettings(kind="endpoint", url=f"http://127.0.0.1:{port}/v1"), EXAMPLES)
    assert result is not None and result.tally is None
    assert "could not be reached" in result.error and "switch the judge off" in result.sentence


def test_a_missing_gguf_file_is_a_message(tmp_path: Path):
    result = run_judge(JudgeSettings(kind="gguf", model_path=str(tmp_path / "none.gguf")), EXAMPLES)
    assert result is not None and result.tally is None and "does not exist" in result.error
