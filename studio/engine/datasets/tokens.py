"""Counting tokens exactly as training will see them: through the model's chat template, in fast batches.

transformers is imported lazily (the GUI imports this package at start-up). Tokenizers are cached per
folder because loading one takes seconds and validation runs again whenever the user changes a setting.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from studio.engine.errors import ExitCode, StudioError

# Used for models without a chat template of their own; the same layout as SmolLM2's and Qwen's.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


@lru_cache(maxsize=4)
def load_tokenizer(path: str) -> Any:
    """The tokenizer of a local model folder (loaded once per process)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StudioError(
            what=f"Studio could not load the tokenizer from '{path}'.",
            why=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            actions=[
                "Check that the folder holds a complete model (tokenizer.json or tokenizer.model).",
                "Validate without a model to skip token statistics.",
                "Use the built-in model: pass `--model builtin`.",
            ],
            code="tokenizer_unavailable",
            exit_code=ExitCode.MODEL_NOT_FOUND,
        ) from None


def chat_template(tokenizer: Any) -> str:
    return getattr(tokenizer, "chat_template", None) or CHATML_TEMPLATE


class TokenCounter:
    """Token lengths of normalized examples: conversations through the chat template, text as is."""

    def __init__(self, tokenizer_path: str | Path) -> None:
        self.tokenizer = load_tokenizer(str(tokenizer_path))
        self.template = chat_template(self.tokenizer)
        self._specials: dict[str, Any] = {
            k: v for k, v in self.tokenizer.special_tokens_map.items() if isinstance(v, str)
        }
        backend = getattr(self.tokenizer, "_tokenizer", None)
        self._encode_fast = getattr(backend, "encode_batch_fast", None)
        self._eos = 1 if self.tokenizer.eos_token_id is not None else 0

    def render(self, conversations: list[list[dict[str, str]]], add_generation_prompt: bool = False) -> list[str]:
        from transformers.utils.chat_template_utils import render_jinja_template

        # Annotated in transformers as returning str; it returns (rendered texts, generation indices).
        result: Any = render_jinja_template(
            conversations,
            chat_template=self.template,
            add_generation_prompt=add_generation_prompt,
            **self._specials,
        )
        return list(result[0])

    def lengths(self, examples: list[dict[str, Any]]) -> list[int | str]:
        """One length per example, in order; a string instead says why the chat template rejected it.

        Some templates refuse conversations (e.g. ones that do not alternate user/assistant); training
        would fail on those rows, so they are reported rather than crashing the whole validation. A preference
        pair counts as its longer side (prompt and answer), which is what must fit in the maximum length.
        """
        sides = [conversations(example) for example in examples]
        chats = [chat for chat_list in sides for chat in chat_list]
        texts = [example["text"] for example, chat_list in zip(examples, sides, strict=True) if not chat_list]
        rendered = self._render_each(chats) if chats else []
        good = [item for item in rendered if isinstance(item, str)]
        encoded = iter(self._encode(good, special=False)) if good else iter(())
        chat_lengths = iter([next(encoded) if isinstance(item, str) else _reason(item) for item in rendered])
        text_lengths = iter(self._encode(texts, special=True)) if texts else iter(())
        result: list[int | str] = []
        for chat_list in sides:
            if not chat_list:
                result.append(next(text_lengths) + self._eos)
                continue
            measured = [next(chat_lengths) for _ in chat_list]
            refused = [item for item in measured if isinstance(item, str)]
            result.append(refused[0] if refused else max(int(item) for item in measured))
        return result

    def _render_each(self, chats: list[list[dict[str, str]]]) -> list[str | Exception]:
        """Render in one batch; when the template raises, render one by one to find the culprits."""
        try:
            return list(self.render(chats))
        except Exception:  # templates can raise anything: jinja errors, IndexError, ...
            found: list[str | Exception] = []
            for chat in chats:
                try:
                    found.append(self.render([chat])[0])
                except Exception as exc:
                    found.append(exc)
            return found

    def _encode(self, texts: list[str], special: bool) -> list[int]:
        if self._encode_fast is not None:
            return [len(encoding.ids) for encoding in self._encode_fast(texts, add_special_tokens=special)]
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=special)["input_ids"]]


def conversations(example: dict[str, Any]) -> list[list[dict[str, str]]]:
    """The whole conversations an example holds: one, or a preference pair's two sides (each with its prompt);
    none for plain text."""
    if "messages" in example:
        return [example["messages"]]
    if "prompt" in example:
        answers = [example["chosen"], example["rejected"]] if "chosen" in example else [example["completion"]]
        return [[*example["prompt"], *answer] for answer in answers]
    return []


def _reason(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
