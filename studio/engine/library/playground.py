"""The playground: the base model and one or two tuned versions answer the same prompt, token by token.

Generation runs in a background thread (transformers' generate is blocking) and hands text to the caller
through a TextIteratorStreamer; a stopping criterion watches a cancel flag so Stop works mid-answer.
Every single-turn exchange is appended to RUN_DIR/playground.jsonl of each tuned run, so its history survives.
`Playground.chat` holds multi-turn conversations instead (studio.engine.library.conversations): each model
continues from its own earlier answers, trimmed to what it can read.
"""

from __future__ import annotations

import functools
import json
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from studio.engine.errors import StudioError
from studio.engine.events import now_iso
from studio.engine.library.conversations import Conversation, Message, fit_to_context, save_conversation
from studio.engine.library.loading import LoadedBase, adapter_dir_of, attach_adapter, load_base, use
from studio.engine.progress import QUIET, TaskContext
from studio.engine.runs.registry import RunRecord

HISTORY_FILE = "playground.jsonl"
BASE_KEY = "base"
MAX_TUNED = 2

Chunk = Callable[[str, str], None]  # (target key, new text)


@dataclass(frozen=True)
class GenerationSettings:
    temperature: float = 0.7
    top_p: float = 0.9
    max_new_tokens: int = 128

    def __post_init__(self) -> None:
        valid = 0 <= self.temperature <= 2 and 0 < self.top_p <= 1 and 1 <= self.max_new_tokens <= 4096
        if not valid:
            raise StudioError(
                what="These generation settings are out of range.",
                why=f"temperature {self.temperature} (0-2), top-p {self.top_p} (above 0, up to 1), "
                    f"max tokens {self.max_new_tokens} (1-4096).",
                actions=["Use values inside the ranges shown.", "Reset to the defaults (0.7, 0.9, 128)."],
                code="generation_settings",
            )


@dataclass(frozen=True)
class Target:
    """Who answers: the base model (run None) or a run's tuned adapter."""

    key: str
    label: str
    base_model: str
    run: RunRecord | None = None


def targets_for(runs: Sequence[RunRecord], include_base: bool = True) -> list[Target]:
    if not runs or len(runs) > MAX_TUNED:
        raise StudioError(
            what=f"The playground takes one or two trained runs; {len(runs)} were given.",
            why="Answers are shown side by side next to the base model's, which fits up to three columns.",
            actions=["Pick one run, or two to compare them."],
            code="playground_run_count",
        )
    for run in runs:
        adapter_dir_of(run)
    found = [Target(BASE_KEY, "Base model", runs[0].base_model or "")] if include_base else []
    found += [Target(run.id, f"{run.name} {run.version}", run.base_model or "", run) for run in runs]
    return found


class _StopWhenSet:
    """A StoppingCriteria (duck-typed) that ends generation once the stop flag is set (Stop, or a new prompt)."""

    def __init__(self, flag: threading.Event) -> None:
        self._flag = flag

    def __call__(self, input_ids: Any, scores: Any, **_kwargs: Any) -> Any:
        import torch

        return torch.full((input_ids.shape[0],), self._flag.is_set(), dtype=torch.bool)


class Playground:
    """Holds the loaded models between prompts; one per base model, adapters attached by run id."""

    def __init__(self, targets: Sequence[Target]) -> None:
        self.targets = list(targets)
        self._bases: dict[str, LoadedBase] = {}
        self.sent: dict[str, list[Message]] = {}  # per target, the messages its latest answer was generated from
        self.context_tokens: int | None = None  # what a model reads at most; None: the model's own limit

    def load(self, task: TaskContext = QUIET) -> None:
        """Load every needed base model and adapter; slow once (seconds), instant afterwards."""
        for index, target in enumerate(self.targets):
            task.report(f"Loading {target.label}", index / max(1, len(self.targets)))
            loaded = self._bases.get(target.base_model)
            if loaded is None:
                loaded = self._bases[target.base_model] = load_base(target.base_model)
            if target.run is not None:
                attach_adapter(loaded, target.key, adapter_dir_of(target.run))

    def stream(self, target: Target, prompt: str, settings: GenerationSettings, cancel: threading.Event,
               system_prompt: str = "") -> Iterator[str]:
        """Yield the answer to one prompt piece by piece (a single turn, no earlier conversation)."""
        system = [{"role": "system", "content": system_prompt}] if system_prompt else []
        return self.stream_messages(target, [*system, {"role": "user", "content": prompt}], settings, cancel)

    def stream_messages(self, target: Target, messages: list[Message], settings: GenerationSettings,
                        cancel: threading.Event) -> Iterator[str]:
        """Yield the model's next answer to this conversation piece by piece; the generating thread is always
        joined before this returns. `messages` end with the user's newest prompt."""
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        self.load()
        loaded = self._bases[target.base_model]
        tokenizer = loaded.tokenizer
        ids = _encode_messages(tokenizer, messages)
        self.sent[target.key] = [dict(message) for message in messages]
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=0.2)
        sampling = settings.temperature > 0
        kwargs: dict[str, Any] = {
            "input_ids": ids, "attention_mask": torch.ones_like(ids), "streamer": streamer,
            "max_new_tokens": settings.max_new_tokens, "do_sample": sampling,
            "stopping_criteria": StoppingCriteriaList([_StopWhenSet(cancel)]),
            "pad_token_id": _pad_id(tokenizer),
        }
        if sampling:
            kwargs.update(temperature=settings.temperature, top_p=settings.top_p)
        failure: list[BaseException] = []

        def generate() -> None:
            try:
                with use(loaded, target.run.id if target.run else None), torch.no_grad():
                    loaded.model.generate(**kwargs)
            except BaseException as exc:  # reported to the caller below, never lost in the thread
                failure.append(exc)
                streamer.end()  # type: ignore[no-untyped-call]  # transformers leaves it untyped

        thread = threading.Thread(target=generate, name="playground-generate", daemon=True)
        thread.start()
        try:
            while True:
                try:
                    text = next(streamer)
                except StopIteration:
                    break
                except queue.Empty:
                    if not thread.is_alive() and streamer.text_queue.empty():
                        break
                    continue
                if text:
                    yield text
        finally:
            cancel_requested = cancel.is_set()
            cancel.set()  # a caller that stops iterating early also stops the thread
            thread.join()
            if not cancel_requested:
                cancel.clear()
        if failure:
            raise StudioError(what=f"{target.label} could not answer.", why=f"{type(failure[0]).__name__}: "
                              f"{failure[0]}", actions=["Try a shorter prompt or fewer max tokens.",
                                                        "Restart the playground."], code="generation_failed")

    def ask(self, prompt: str, settings: GenerationSettings, on_chunk: Chunk, cancel: threading.Event,
            system_prompt: str = "") -> dict[str, str]:
        """Every target answers in turn; returns the full answers and saves them to each run's history."""
        if not prompt.strip():
            raise StudioError(what="Type a prompt first.",
                              why="An empty prompt gives the models nothing to answer.",
                              actions=["Type a question or pick an example prompt."], code="prompt_empty")
        answers: dict[str, str] = {}
        for target in self.targets:
            if cancel.is_set():
                break
            parts = []
            for text in self.stream(target, prompt, settings, cancel, system_prompt):
                parts.append(text)
                on_chunk(target.key, text)
            answers[target.key] = "".join(parts).strip()
        for target in self.targets:
            if target.run is not None and answers:
                append_history(target.run.run_dir, prompt, settings, {
                    t.label: answers[t.key] for t in self.targets if t.key in answers
                }, cancelled=cancel.is_set())
        return answers


    def chat(self, conversation: Conversation, prompt: str, settings: GenerationSettings, on_chunk: Chunk,
             cancel: threading.Event, on_trimmed: Callable[[str, int], None] | None = None) -> ChatTurn:
        """The next turn of a conversation: each target answers `prompt` after its own earlier turns (the oldest
        dropped when they no longer fit its context, reported through `on_trimmed(key, turns dropped)`), and
        the prompt and answer join its side. A target that Stop reached before it wrote anything keeps no
        trace of the turn; a stopped answer is kept as far as it got."""
        if not prompt.strip():
            raise StudioError(what="Type a message first.",
                              why="An empty message gives the models nothing to answer.",
                              actions=["Type a question or pick an example prompt."], code="prompt_empty")
        self.load()
        turn = ChatTurn()
        for target in self.targets:
            if cancel.is_set():
                break
            loaded = self._bases[target.base_model]
            conversation.labels[target.key] = target.label
            question = {"role": "user", "content": prompt.strip()}
            limit = (self.context_tokens or context_length(loaded)) - settings.max_new_tokens
            kept, dropped = fit_to_context([*conversation.messages(target.key), question],
                                           functools.partial(count_tokens, loaded.tokenizer), limit)
            turn.dropped[target.key] = dropped
            if on_trimmed is not None:
                on_trimmed(target.key, dropped)
            parts = []
            for text in self.stream_messages(target, kept, settings, cancel):
                parts.append(text)
                on_chunk(target.key, text)
            answer = "".join(parts).strip()
            if answer or not cancel.is_set():
                conversation.turns(target.key).extend([question, {"role": "assistant", "content": answer}])
                turn.answers[target.key] = answer
        turn.cancelled = cancel.is_set()
        return turn

    def save(self, conversation: Conversation) -> None:
        """Keep the conversation with every tuned run that answered in it (it reopens with the run)."""
        for target in self.targets:
            if target.run is not None:
                save_conversation(target.run.run_dir, conversation)


@dataclass
class ChatTurn:
    """What one turn of a conversation gave: each target's answer, and how many older turns it no longer saw."""

    answers: dict[str, str] = field(default_factory=dict)
    dropped: dict[str, int] = field(default_factory=dict)
    cancelled: bool = False


def _pad_id(tokenizer: Any) -> int:
    return int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)


def _render(tokenizer: Any, messages: list[Message]) -> str | None:
    """The conversation as the model reads it, ready for its answer; None for a model without a chat template
    (it then gets the newest prompt alone for one turn, or a plain "User:/Assistant:" transcript)."""
    if getattr(tokenizer, "chat_template", None):
        return str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
    return None


def _encode_messages(tokenizer: Any, messages: list[Message]) -> Any:
    text = _render(tokenizer, messages)
    if text is not None:
        return tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]
    turns = [m for m in messages if m["role"] != "system"]
    if len(turns) == 1:
        return tokenizer(turns[0]["content"], return_tensors="pt")["input_ids"]
    return tokenizer(_plain_transcript(messages), return_tensors="pt")["input_ids"]


def _plain_transcript(messages: list[Message]) -> str:
    lines = [f"{message['role'].capitalize()}: {message['content']}" for message in messages]
    return "\n".join([*lines, "Assistant:"])


def count_tokens(tokenizer: Any, messages: list[Message]) -> int:
    """How many tokens the model reads for this conversation (its answer not included)."""
    text = _render(tokenizer, messages)
    if text is not None:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])
    return len(tokenizer(_plain_transcript(messages))["input_ids"])


def context_length(loaded: LoadedBase) -> int:
    """How many tokens the model reads at most (prompt and answer together), from its config."""
    config = getattr(loaded.model, "config", None)
    for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    limit = getattr(loaded.tokenizer, "model_max_length", None)
    return limit if isinstance(limit, int) and 0 < limit < 1_000_000 else 2048


# ---- history and example prompts -------------------------------------------------------------------------

def append_history(run_dir: Path, prompt: str, settings: GenerationSettings, answers: dict[str, str],
                   cancelled: bool = False) -> None:
    entry = {"ts": now_iso(), "prompt": prompt, "settings": asdict(settings), "answers": answers,
             "cancelled": cancelled}
    with (run_dir / HISTORY_FILE).open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, ensure_ascii=False) + "\n")


def load_history(run_dir: Path) -> list[dict[str, Any]]:
    """Past exchanges, oldest first; a damaged line is skipped."""
    entries = []
    try:
        lines = (run_dir / HISTORY_FILE).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("prompt"), str):
            entries.append(entry)
    return entries


def example_prompts(run: RunRecord) -> list[str]:
    """The run's use-case profile's example prompts (the chatbot's when the profile is unknown)."""
    from studio.engine.profiles import get_profile

    try:
        return list(get_profile(str(run.config.get("profile") or "")).example_prompts)
    except StudioError:
        return list(get_profile(None).example_prompts)
