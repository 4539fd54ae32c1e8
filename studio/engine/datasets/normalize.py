"""Turn one raw row into Studio's single example form, or say precisely why it cannot be used.

Conversations become {"messages": [{"role": "system"|"user"|"assistant", "content": str}, ...]} and plain
text becomes {"text": str}. Preference pairs become TRL's conversational form with an explicit prompt,
{"prompt": [messages], "chosen": [messages], "rejected": [messages]}, and KTO's labeled answers
{"prompt": [messages], "completion": [messages], "label": bool}. Problems are issue codes from the catalog
in issues.py.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from studio.engine.datasets.schemas import Schema, match_layout

ROLE_ALIASES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "prompter": "user",
    "customer": "user",
    "question": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "ai": "assistant",
    "chatgpt": "assistant",
    "answer": "assistant",
}

# Text that spreadsheets and pandas write for a missing or broken number: not content a model can learn from.
PLACEHOLDER_TEXT = frozenset(
    {"nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "null", "none"}
)


@dataclass(slots=True)
class Outcome:
    """The normalized example, or the problem code (and detail) that made the row unusable."""

    example: dict[str, Any] | None = None
    problem: str | None = None
    detail: str = ""
    notes: list[tuple[str, str]] = field(default_factory=list)


def normalize_row(value: Any, schema: Schema) -> Outcome:
    if schema.kind == "text":
        return _text_row(value, schema)
    if schema.kind in {"preference", "unpaired"}:
        if not isinstance(value, dict):
            return Outcome(problem="row_not_object")
        pairs = schema.kind == "preference"
        return _preference_row(value, schema.mapping) if pairs else _unpaired_row(value, schema.mapping)
    if isinstance(value, list):
        if value and all(isinstance(item, dict) for item in value):
            return _conversation(value, system=None, outcome=Outcome())
        return Outcome(problem="row_not_object")
    if not isinstance(value, dict):
        return Outcome(problem="row_not_object")
    outcome = Outcome()
    mapping = schema.mapping
    if not any(column in value for column in mapping):
        other = match_layout(value)
        if other is None or other.kind != "conversation":
            return Outcome(problem="missing_field", detail=", ".join(mapping) or "messages")
        outcome.notes.append(("mixed_schemas", other.label))
        mapping = other.mapping
    return _mapped(value, mapping, outcome)


def _mapped(row: dict[str, Any], mapping: dict[str, str], outcome: Outcome) -> Outcome:
    parts: dict[str, str] = {}
    raw_messages: Any = None
    for column, role in mapping.items():
        if column not in row:
            if role in {"user", "assistant", "messages"}:
                return Outcome(problem="missing_field", detail=column)
            continue
        if role == "messages":
            raw_messages = row[column]
            continue
        parts[role] = _as_text(row[column], outcome)
    system = parts.get("system", "").strip() or None
    if raw_messages is not None:
        if isinstance(raw_messages, str):
            try:
                raw_messages = json.loads(raw_messages)  # CSV cells hold conversations as JSON text
            except ValueError:
                return Outcome(problem="bad_messages")
        if not isinstance(raw_messages, list) or not raw_messages:
            return Outcome(problem="bad_messages")
        return _conversation(raw_messages, system, outcome)
    user = "\n\n".join(
        text
        for text in (
            parts.get("context", "").strip(),
            parts.get("user", "").strip(),
            parts.get("input", "").strip(),
        )
        if text
    )
    answer = parts.get("assistant", "").strip()
    if not parts.get("user", "").strip():
        return Outcome(problem="empty_prompt")
    if not answer:
        return Outcome(problem="empty_answer")
    messages = [{"role": "system", "content": system}] if system else []
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    outcome.example = {"messages": messages}
    return outcome


def _conversation(raw: list[Any], system: str | None, outcome: Outcome) -> Outcome:
    messages = _read_messages(raw, system, outcome)
    return messages if isinstance(messages, Outcome) else _check_order(messages, outcome)


def _read_messages(raw: list[Any], system: str | None, outcome: Outcome) -> list[dict[str, str]] | Outcome:
    """The messages of a raw list (roles unified, empty system/other turns dropped), or the row's problem."""
    messages: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
    for item in raw:
        if not isinstance(item, dict):
            return Outcome(problem="bad_messages")
        role_value = item.get("role", item.get("from", item.get("speaker")))
        content_value = item.get("content", item.get("value", item.get("text")))
        if role_value is None or (content_value is None and "content" not in item and "value" not in item):
            return Outcome(problem="bad_messages")
        role = ROLE_ALIASES.get(str(role_value).strip().lower())
        if role is None:
            return Outcome(problem="unknown_role", detail=str(role_value)[:30])
        content = _as_text(content_value, outcome).strip()
        if not content:
            if role == "assistant":
                return Outcome(problem="empty_answer")
            if role == "user":
                return Outcome(problem="empty_prompt")
            continue
        messages.append({"role": role, "content": content})
    return messages


# ---- preference data ------------------------------------------------------------------------------------

_TRUE = frozenset({"true", "yes", "1", "good", "desirable"})
_FALSE = frozenset({"false", "no", "0", "bad", "undesirable"})


def _preference_row(row: dict[str, Any], mapping: dict[str, str]) -> Outcome:
    """A chosen/rejected pair with its prompt. When both sides are whole conversations, the turns they share
    are the prompt (the Anthropic HH and UltraFeedback layouts); otherwise the prompt column is."""
    outcome = Outcome()
    columns = {role: column for column, role in mapping.items()}
    for role in ("chosen", "rejected"):
        if columns.get(role) not in row:
            return Outcome(problem="missing_field", detail=columns.get(role, role))
    system = _system(row, columns, outcome)
    chosen = _side(row[columns["chosen"]], outcome)
    if isinstance(chosen, Outcome):
        return chosen
    rejected = _side(row[columns["rejected"]], outcome)
    if isinstance(rejected, Outcome):
        return rejected
    shared = 0
    while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
        shared += 1
    prompt: list[dict[str, str]] | Outcome
    if any(message["role"] == "user" for message in chosen[:shared]):
        prompt = [*([{"role": "system", "content": system}] if system else []), *chosen[:shared]]
    elif "user" in columns or "messages" in columns:
        prompt = _prompt(row, columns, system, outcome)
    else:
        prompt = Outcome(problem="missing_field", detail="prompt")
    if isinstance(prompt, Outcome):
        return prompt
    chosen, rejected = chosen[shared:], rejected[shared:]
    if not chosen and not rejected:
        return Outcome(problem="same_answers")
    for side in (chosen, rejected):
        if not side or side[0]["role"] != "assistant":
            return Outcome(problem="bad_side")
    outcome.example = {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    return outcome


def _unpaired_row(row: dict[str, Any], mapping: dict[str, str]) -> Outcome:
    """One answer to a prompt and whether it is a good one (KTO)."""
    outcome = Outcome()
    columns = {role: column for column, role in mapping.items()}
    for role in ("user", "assistant", "label"):
        if columns[role] not in row:
            return Outcome(problem="missing_field", detail=columns[role])
    label = _label(row[columns["label"]])
    if label is None:
        return Outcome(problem="bad_label", detail=str(row[columns["label"]])[:30])
    prompt = _prompt(row, columns, _system(row, columns, outcome), outcome)
    if isinstance(prompt, Outcome):
        return prompt
    completion = _side(row[columns["assistant"]], outcome)
    if isinstance(completion, Outcome):
        return Outcome(problem="empty_answer") if completion.problem == "empty_side" else completion
    if completion[0]["role"] != "assistant":
        return Outcome(problem="bad_side")
    outcome.example = {"prompt": prompt, "completion": completion, "label": label}
    return outcome


def _system(row: dict[str, Any], columns: dict[str, str], outcome: Outcome) -> str | None:
    column = columns.get("system")
    return (_as_text(row[column], outcome).strip() or None) if column in row else None


def _prompt(
    row: dict[str, Any], columns: dict[str, str], system: str | None, outcome: Outcome
) -> list[dict[str, str]] | Outcome:
    """The prompt turns: a text (with the Alpaca-style input appended) or a conversation ending on the user."""
    raw = row.get(columns.get("messages") or columns.get("user", ""))
    if isinstance(raw, str) and columns.get("messages"):
        try:
            raw = json.loads(raw)  # CSV cells hold conversations as JSON text
        except ValueError:
            return Outcome(problem="bad_messages")
    if isinstance(raw, list):
        messages = _read_messages(raw, system, outcome)
        if isinstance(messages, Outcome):
            return messages
        if not messages or messages[-1]["role"] != "user":
            return Outcome(problem="empty_prompt" if not messages else "bad_messages")
        return messages
    if raw is not None and not isinstance(raw, str | int | float | dict):
        return Outcome(problem="bad_messages")
    question = _as_text(raw, outcome).strip()
    if not question:
        return Outcome(problem="empty_prompt")
    extra = _as_text(row.get(columns.get("input", ""), ""), outcome).strip() if "input" in columns else ""
    text = "\n\n".join(part for part in (question, extra) if part)
    return [*([{"role": "system", "content": system}] if system else []), {"role": "user", "content": text}]


def _side(value: Any, outcome: Outcome) -> list[dict[str, str]] | Outcome:
    """One answer of a pair (or KTO's completion): a text, one message, or a list of messages."""
    if isinstance(value, dict):
        value = [value]
    if isinstance(value, list) and value and all(isinstance(item, dict) for item in value):
        if all("text" in item and "role" not in item and "from" not in item for item in value):
            value = _as_text(value, outcome)  # content parts, not messages
        else:
            messages = _read_messages(value, None, outcome)
            if isinstance(messages, Outcome):
                side_problems = {"empty_answer": "empty_side", "bad_messages": "bad_side"}
                return Outcome(problem=side_problems.get(messages.problem or "", messages.problem))
            return messages if messages else Outcome(problem="empty_side")
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        return Outcome(problem="empty_side" if value in (None, [], "") else "bad_side")
    text = _as_text(value, outcome).strip()
    return [{"role": "assistant", "content": text}] if text else Outcome(problem="empty_side")


def _label(value: Any) -> bool | None:
    """KTO's label: true for a good answer, false for a bad one; None when it is neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower() if isinstance(value, str) else ""
    return True if text in _TRUE else False if text in _FALSE else None


def _check_order(messages: list[dict[str, str]], outcome: Outcome) -> Outcome:
    """Flag unusual orders, drop trailing user turns, and require one user -> assistant exchange."""
    roles = [message["role"] for message in messages]
    if "system" in roles[1:]:
        outcome.notes.append(("role_order", "a system message after the start"))
    dialogue = [role for role in roles if role != "system"]
    if dialogue and dialogue[0] == "assistant":
        outcome.notes.append(("role_order", "starts with the assistant"))
    if any(first == second for first, second in pairwise(dialogue)):
        outcome.notes.append(("role_order", "two messages in a row from the same side"))
    while messages and messages[-1]["role"] != "assistant":
        if messages[-1]["role"] == "user" and "ends with a user message" not in (n[1] for n in outcome.notes):
            outcome.notes.append(("role_order", "ends with a user message"))
        messages.pop()
    if not any(a == "user" and b == "assistant" for a, b in pairwise(roles)):
        return Outcome(problem="no_answer")
    outcome.example = {"messages": messages}
    return outcome


def _text_row(value: Any, schema: Schema) -> Outcome:
    outcome = Outcome()
    if isinstance(value, dict):
        column = next(iter(schema.mapping), "text")
        if column not in value:
            return Outcome(problem="missing_field", detail=column)
        value = value[column]
    elif not isinstance(value, str):
        return Outcome(problem="row_not_object")
    text = _as_text(value, outcome).strip()
    if not text:
        return Outcome(problem="empty_text")
    outcome.example = {"text": text}
    return outcome


def _as_text(value: Any, outcome: Outcome) -> str:
    """Strings pass through; content-part lists are joined; numbers and the like become text, with a note."""
    if isinstance(value, str):
        return "" if value.strip().lower() in PLACEHOLDER_TEXT else value
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, list) and all(isinstance(part, dict) and "text" in part for part in value):
        return "\n".join(str(part["text"]) for part in value)
    outcome.notes.append(("non_text_value", type(value).__name__))
    if isinstance(value, bool | int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False)
