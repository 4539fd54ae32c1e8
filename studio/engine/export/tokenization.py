"""Whether a GGUF's vocabulary splits text exactly as the model's own tokenizer does.

Matching next tokens on a few prompts is not enough: a GGUF whose pre-tokenizer differs (how text is cut
before merging) reads code, numbers or emoji differently from the trained model while ordinary prose
agrees. The export's verification therefore also tokenizes a varied sample both ways.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from llama_cpp import Llama
    from transformers import PreTrainedTokenizerBase

# Code, numbers, accents, emoji, whitespace runs, contractions, mixed scripts: where pre-tokenizers differ.
SAMPLE_TEXTS = (
    "def add(a, b):\n    return a + b  # sum\n\n\tif x >= 10_000: print(f\"{x!r}\")",
    "Numbers: 3 33 333 3333 33333 1,234.56 -7e10 0x1F 2026-12-06 12:30",
    "Accents: café naïve résumé Ünïcödé façade jalapeño Ångström",
    "Emoji: 🚀 😶\u200d🌫️ 🦙🦙 ✅ 👍🏽 (normal)",
    "Whitespace:\t\ttabs   spaces\n\n\nnewlines    end  \n \n  ",
    "I've been 'told he's there, 'RE you sure? We'Ve a'lL ------======= ??!!...",
    "Mixed: нещо на Български, 我想在apple工作1314151天～, कान्तिपुर",
)


@dataclass
class Agreement:
    """How many sample texts the GGUF tokenizes exactly like the Hugging Face tokenizer."""

    agreeing: int
    total: int
    mismatches: list[str] = field(default_factory=list)  # the texts that differ, for the report

    @property
    def share(self) -> float:
        return self.agreeing / self.total if self.total else 0.0


def compare_tokenization(
    llm: Llama, tokenizer: PreTrainedTokenizerBase, texts: tuple[str, ...] = SAMPLE_TEXTS
) -> Agreement:
    """Compare the Hugging Face ids of each text with the ids llama.cpp gives from the GGUF's vocabulary."""
    mismatches = [text for text in texts
                  if llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
                  != tokenizer(text, add_special_tokens=False)["input_ids"]]
    return Agreement(len(texts) - len(mismatches), len(texts), mismatches)
