"""Playground conversations: each model's own multi-turn history, saved per run, exported, and turned into data.

A conversation holds one message list per answering model (the base model and each tuned run answer the same
prompts, but each continues from its own answers), plus the system prompt they share. Conversations live in
RUN_DIR/conversations.json (written atomically), so they reopen with the run. A corrected answer goes into a
COPY of the run's dataset in the run folder (the original file is never touched); `Registry.continue_config`
trains the next version on that copy.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.engine.datasets.cache import write_atomic
from studio.engine.errors import StudioError
from studio.engine.events import now_iso

CONVERSATIONS_FILE = "conversations.json"
CORRECTED_DATASET = "dataset-with-corrections.jsonl"
_FORMAT_VERSION = 1

Message = dict[str, str]


@dataclass
class Conversation:
    """One chat: the shared system prompt and, per answering model (its target key), its user/assistant turns."""

    system_prompt: str = ""
    sides: dict[str, list[Message]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    created: str = field(default_factory=now_iso)
    updated: str = field(default_factory=now_iso)

    @property
    def title(self) -> str:
        """The first prompt's first line, short enough for a list."""
        for turns in self.sides.values():
            for message in turns:
                if message["role"] == "user" and message["content"].strip():
                    return message["content"].strip().splitlines()[0][:70]
        return "(new conversation)"

    def turns(self, key: str) -> list[Message]:
        return self.sides.setdefault(key, [])

    def messages(self, key: str) -> list[Message]:
        """What the model `key` sees: the system prompt (when set), then its own turns."""
        system = [{"role": "system", "content": self.system_prompt}] if self.system_prompt.strip() else []
        return system + [dict(message) for message in self.sides.get(key, [])]

    def last_answer(self, key: str) -> str | None:
        turns = self.sides.get(key, [])
        return turns[-1]["content"] if turns and turns[-1]["role"] == "assistant" else None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "created": self.created, "updated": self.updated,
                "system_prompt": self.system_prompt, "labels": self.labels, "sides": self.sides}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Conversation:
        sides = {str(key): [{"role": str(m["role"]), "content": str(m["content"])} for m in turns]
                 for key, turns in data.get("sides", {}).items()}
        return cls(system_prompt=str(data.get("system_prompt", "")), sides=sides,
                   labels={str(k): str(v) for k, v in data.get("labels", {}).items()},
                   id=str(data["id"]), created=str(data.get("created", "")), updated=str(data.get("updated", "")))


# ---- storage ---------------------------------------------------------------------------------------------

def load_conversations(run_dir: Path) -> list[Conversation]:
    """The run's saved conversations, oldest first; a damaged file or entry is skipped, never fatal."""
    try:
        data = json.loads((run_dir / CONVERSATIONS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    found = []
    for entry in data.get("conversations", []) if isinstance(data, dict) else []:
        try:
            found.append(Conversation.from_dict(entry))
        except (KeyError, TypeError, AttributeError):
            continue
    return found


def save_conversation(run_dir: Path, conversation: Conversation) -> None:
    """Add or replace this conversation in the run's file (atomically: a crash never leaves half a file)."""
    conversation.updated = now_iso()
    kept = [c for c in load_conversations(run_dir) if c.id != conversation.id] + [conversation]
    kept.sort(key=lambda c: c.created)
    text = json.dumps({"version": _FORMAT_VERSION, "conversations": [c.to_dict() for c in kept]},
                      ensure_ascii=False, indent=1)
    write_atomic(run_dir / CONVERSATIONS_FILE, text)


def export_jsonl(conversations: Sequence[Conversation], key: str, path: Path) -> int:
    """Write one {"messages": [...]} line per answered conversation of model `key` (a training file as is);
    returns how many lines were written."""
    lines = [json.dumps({"messages": c.messages(key)}, ensure_ascii=False)
             for c in conversations if c.last_answer(key) is not None]
    write_atomic(path, "".join(line + "\n" for line in lines))
    return len(lines)


# ---- the context-length guard ----------------------------------------------------------------------------

def fit_to_context(messages: list[Message], count_tokens: Callable[[list[Message]], int],
                   limit: int) -> tuple[list[Message], int]:
    """Drop the oldest exchanges (never the system prompt or the newest prompt) until `count_tokens(messages)`
    fits in `limit`; returns the kept messages and how many earlier turns were dropped."""
    system = [m for m in messages[:1] if m["role"] == "system"]
    turns = messages[len(system):]
    dropped = 0
    while len(turns) > 1 and count_tokens(system + turns) > limit:
        cut = 2 if len(turns) > 2 and turns[1]["role"] == "assistant" else 1
        turns, dropped = turns[cut:], dropped + cut
    if count_tokens(system + turns) > limit:
        raise StudioError(
            what="This message is too long for the model.",
            why=f"The model reads at most {limit} tokens besides its answer, and the system prompt plus this "
                "message alone are longer.",
            actions=["Shorten the message or the system prompt.", "Lower Max new tokens to leave more room.",
                     "Start a new conversation."],
            code="prompt_too_long",
        )
    return system + turns, dropped


# ---- corrected answers into a copy of the dataset --------------------------------------------------------

def corrected_dataset(run_dir: Path) -> Path:
    """Where the run's dataset copy with the user's corrected answers lives (it may not exist yet)."""
    return run_dir / CORRECTED_DATASET


def add_correction(run_dir: Path, source: str | None, conversation: Conversation, key: str,
                   corrected: str) -> Path:
    """Replace model `key`'s last answer with `corrected` and append the exchange so far to the run's dataset
    copy (made from `source` on first use, which stays untouched); returns the copy's path."""
    turns = conversation.sides.get(key, [])
    if not corrected.strip() or not turns or turns[-1]["role"] != "assistant":
        raise StudioError(
            what="There is no answer to add yet." if corrected.strip() else "The corrected answer is empty.",
            why="An example for the dataset is a prompt with the answer the model should have given.",
            actions=["Send a prompt and wait for the answer.", "Type the answer you want, then add it."],
            code="correction_empty",
        )
    turns[-1] = {"role": "assistant", "content": corrected.strip()}
    copy = corrected_dataset(run_dir)
    if not copy.exists():
        _start_copy(Path(source) if source else None, copy)
    with copy.open("rb+") as handle:
        handle.seek(0, 2)
        if handle.tell():
            handle.seek(-1, 2)
            ends_with_newline = handle.read(1) == b"\n"
            if not ends_with_newline:
                handle.write(b"\n")
        handle.write((json.dumps({"messages": conversation.messages(key)}, ensure_ascii=False) + "\n")
                     .encode("utf-8"))
    return copy


def _start_copy(source: Path | None, copy: Path) -> None:
    """A JSONL file of chat messages keeps its own bytes; any other layout is rewritten as chat messages."""
    if source is None or not source.is_file():
        raise StudioError(
            what="The run's dataset could not be found, so there is nothing to copy the answer into.",
            why=f"It was trained on {source or 'a file Studio did not record'}, which is not there any more.",
            actions=["Put the dataset file back where it was.", "Export the conversation as JSONL instead and "
                     "add it to your data by hand."],
            code="dataset_missing",
        )
    if _is_chat_jsonl(source):
        shutil.copyfile(source, copy)
        return
    from studio.engine.datasets.validate import iter_examples

    examples = list(iter_examples(source))
    if not examples or any("messages" not in example for example in examples):
        raise StudioError(
            what="Corrected answers cannot be added to this dataset.",
            why="It holds preference pairs or plain text, not prompts with answers.",
            actions=["Export the conversation as JSONL and train a separate version on it.",
                     "Add the example to a chat dataset instead."],
            code="dataset_not_chat",
        )
    write_atomic(copy, "".join(json.dumps({"messages": e["messages"]}, ensure_ascii=False) + "\n"
                               for e in examples))


def _is_chat_jsonl(path: Path) -> bool:
    if path.suffix.lower() not in {".jsonl", ".ndjson"}:
        return False
    with path.open(encoding="utf-8", errors="replace") as handle:
        first = next((line for line in handle if line.strip()), "")
    try:
        row = json.loads(first)
    except ValueError:
        return False
    return isinstance(row, dict) and isinstance(row.get("messages"), list)
