"""Known dataset layouts (Alpaca, ShareGPT, OpenAI messages, ...) and how their columns map to roles.

A mapping says which column plays which role: {"question": "user", "answer": "assistant"}. Every layout is
expressed as such a mapping, so a user override and a recognized layout go through the same code.

Preference data (for DPO, ORPO and KTO) has roles of its own: "chosen" and "rejected" answers to one prompt
(kind "preference"), or one answer with a true/false "label" saying whether it is a good one (kind
"unpaired", KTO's layout). Their layouts come first, so a chosen/rejected file is never read as plain
prompt/answer pairs ("chosen" alone still reads as an answer).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ROLES = ("system", "user", "input", "context", "assistant", "text", "messages", "chosen", "rejected", "label")
PREFERENCE_KINDS = frozenset({"preference", "unpaired"})
CONVERSATION_ROLES = frozenset({"system", "user", "input", "context", "assistant", "messages"})


@dataclass(frozen=True)
class Schema:
    """A recognized layout: `name` is stable (used in JSON), `label` is for people."""

    name: str
    label: str
    kind: str  # "conversation", "text", "preference" (chosen/rejected pairs) or "unpaired" (KTO's labels)
    mapping: dict[str, str]


# Layouts recognized by exact column names, most specific first: (name, label, required, optional).
_LAYOUTS: list[tuple[str, str, dict[str, str], dict[str, str]]] = [
    (
        "preference_sharegpt",
        "preference pairs (conversation with chosen/rejected turns)",
        {"conversations": "messages", "chosen": "chosen", "rejected": "rejected"},
        {"system": "system"},
    ),
    (
        "preference",
        "preference pairs (prompt/chosen/rejected)",
        {"prompt": "user", "chosen": "chosen", "rejected": "rejected"},
        {"system": "system"},
    ),
    (
        "preference_instruction",
        "preference pairs (instruction/chosen/rejected)",
        {"instruction": "user", "chosen": "chosen", "rejected": "rejected"},
        {"input": "input", "system": "system"},
    ),
    (
        "preference_conversations",
        "preference pairs (chosen/rejected conversations)",
        {"chosen": "chosen", "rejected": "rejected"},
        {"system": "system"},
    ),
    (
        "kto",
        "KTO (prompt/completion/label)",
        {"prompt": "user", "completion": "assistant", "label": "label"},
        {"system": "system"},
    ),
    ("openai", "OpenAI messages", {"messages": "messages"}, {}),
    ("sharegpt", "ShareGPT conversations", {"conversations": "messages"}, {"system": "system"}),
    (
        "alpaca",
        "Alpaca (instruction/input/output)",
        {"instruction": "user", "output": "assistant"},
        {"input": "input", "system": "system"},
    ),
    (
        "prompt_completion",
        "prompt/completion",
        {"prompt": "user", "completion": "assistant"},
        {"system": "system"},
    ),
    (
        "qa",
        "question/answer",
        {"question": "user", "answer": "assistant"},
        {"context": "context", "system": "system"},
    ),
    ("text", "plain text", {"text": "text"}, {}),
]

# Column names that suggest a role when no layout matches exactly.
_ALIASES: dict[str, tuple[str, ...]] = {
    "system": ("system", "system_prompt", "persona"),
    "user": (
        "prompt",
        "question",
        "instruction",
        "query",
        "input",
        "user",
        "human",
        "request",
        "source",
        "article",
        "dialogue",
        "problem",
        "task",
    ),
    "context": ("context", "passage", "background"),
    "assistant": (
        "completion",
        "answer",
        "output",
        "response",
        "reply",
        "target",
        "summary",
        "assistant",
        "gpt",
        "solution",
        "highlights",
        "chosen",
    ),
    "text": ("text", "content", "document", "body", "passage_text"),
    "messages": ("messages", "conversations", "conversation", "dialog", "chat"),
}
KNOWN_COLUMNS = frozenset(name for names in _ALIASES.values() for name in names)
RECORD_KEYS = frozenset({"messages", "conversations", "instruction", "prompt", "question", "text", "chosen"})
LABELS = {name: label for name, label, _, _ in _LAYOUTS} | {"custom": "custom column mapping"}


def match_layout(columns: Iterable[str]) -> Schema | None:
    """The known layout whose required columns are all present (matched without regard to case)."""
    by_lower = {column.lower(): column for column in columns}
    for name, label, required, optional in _LAYOUTS:
        if all(key in by_lower for key in required):
            mapping = {by_lower[key]: role for key, role in {**required, **optional}.items() if key in by_lower}
            return Schema(name, label, kind_of(mapping), mapping)
    return None


def kind_of(mapping: Mapping[str, str]) -> str:
    roles = set(mapping.values())
    if roles & {"chosen", "rejected"}:
        return "preference"
    if "label" in roles:
        return "unpaired"
    return "text" if roles == {"text"} else "conversation"


def propose_schema(rows: list[Any]) -> tuple[Schema | None, bool]:
    """The layout of most sample rows, and whether it was guessed from column names rather than recognized."""
    records = [row for row in rows if isinstance(row, dict)]
    if not records:
        if any(isinstance(row, str) for row in rows):
            return Schema("text", LABELS["text"], "text", {}), False
        if any(_is_message_list(row) for row in rows):
            return Schema("openai", LABELS["openai"], "conversation", {}), False
        return None, False
    votes = Counter(tuple(sorted(record)) for record in records)
    columns = list(votes.most_common(1)[0][0])
    known = match_layout(columns)
    if known is not None:
        numeric = [
            column for column, role in known.mapping.items() if role != "label" and _only_numbers(column, records)
        ]
        return (None, False) if numeric else (known, False)
    return _guess(columns, records), True


def _only_numbers(column: str, records: list[dict[str, Any]]) -> bool:
    """Whether every sample value of the column is a number (or numeric text), so it cannot be a message."""
    values = [record[column] for record in records if record.get(column) not in (None, "")]
    return bool(values) and all(_is_number(value) for value in values)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool | int | float):
        return True
    try:
        float(str(value))
    except ValueError:
        return False
    return True


def _guess(columns: list[str], records: list[dict[str, Any]]) -> Schema | None:
    """Map columns by their names, then fall back to position for two unnamed text columns."""
    mapping: dict[str, str] = {}
    for column in columns:
        if _only_numbers(column, records):
            continue  # ids, scores, labels: never a prompt or an answer unless the user maps them
        lowered = column.lower().strip()
        for role, names in _ALIASES.items():
            if lowered in names and role not in mapping.values():
                mapping[column] = role
                break
    roles = set(mapping.values())
    if "messages" in roles:
        return Schema("custom", LABELS["custom"], "conversation", {k: v for k, v in mapping.items() if v == "messages"})
    if {"user", "assistant"} <= roles:
        return Schema("custom", LABELS["custom"], "conversation", mapping)
    texty = [column for column in columns if _mostly_text(column, records)]
    if "text" in roles and len(texty) <= 1 + len(roles - {"text"}):
        return Schema("custom", LABELS["custom"], "text", {k: v for k, v in mapping.items() if v == "text"})
    if len(texty) == 2:
        return Schema("custom", LABELS["custom"], "conversation", {texty[0]: "user", texty[1]: "assistant"})
    if len(texty) == 1 and len(columns) == 1 and not roles & {"user", "assistant", "system", "context"}:
        return Schema("custom", LABELS["custom"], "text", {texty[0]: "text"})
    return None


def _mostly_text(column: str, records: list[dict[str, Any]]) -> bool:
    values = [record.get(column) for record in records]
    return sum(1 for value in values if isinstance(value, str) and value.strip()) >= max(1, len(values) // 2)


def _is_message_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(item, dict) for item in value)


def check_mapping(mapping: Mapping[str, str], columns: Iterable[str]) -> str | None:
    """Why a user-given mapping cannot work, or None when it is fine."""
    known = set(columns)
    for column, role in mapping.items():
        if role not in ROLES:
            return f"'{role}' (for column '{column}') is not a role"
        if known and column not in known:
            return f"there is no column '{column}' (columns: {', '.join(sorted(known))})"
    roles = set(mapping.values())
    if "text" in roles and roles != {"text"}:
        return "'text' cannot be combined with conversation roles"
    conversation = not roles & {"text", "messages", "chosen", "rejected"}
    if roles and conversation and not {"user", "assistant"} <= roles:
        return "a conversation needs a 'user' column and an 'assistant' column (or one 'messages' column)"
    if not roles:
        return "the mapping is empty"
    if roles & {"chosen", "rejected"} and not {"chosen", "rejected"} <= roles:
        return "preference pairs need both a 'chosen' column and a 'rejected' column"
    if "label" in roles and not {"user", "assistant"} <= roles:
        return "labeled answers (KTO) need a 'user' column, an 'assistant' column and a 'label' column"
    return None


def parse_mapping(pairs: Iterable[str]) -> dict[str, str]:
    """`["question=user", "reply=assistant"]` from the command line into a mapping."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        column, sep, role = pair.partition("=")
        mapping[column.strip()] = role.strip().lower() if sep else ""
    return mapping
