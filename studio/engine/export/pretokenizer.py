"""The llama.cpp pre-tokenizer of a BPE tokenizer the converter does not recognise, proven by agreement.

llama.cpp's converter names a BPE tokenizer's pre-tokenizer (how text is split before merging) by hashing
the ids of one fixed text; a tokenizer it has not seen (a customised one, or a known vocabulary on another
family) is refused with "BPE pre-tokenizer was not recognized - update get_vocab_base_pre()". Studio reads
the pre-tokenizer from tokenizer.json's own definition, tries the llama.cpp pre-tokenizer it equals first
and the other common ones after, and keeps the first whose GGUF tokenizes a varied sample exactly as the
Hugging Face tokenizer does.

The name reaches the converter the way its error message asks for: this module's entry point runs
llama.cpp's script unchanged, with `get_vocab_base_pre` extended to answer where it would have raised (its
own answer is kept wherever it has one).

Run (as the export does): python -m studio.engine.export.pretokenizer NAME CONVERTER_SCRIPT ARGS...
"""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.engine.export.tokenization import Agreement, compare_tokenization

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

UNRECOGNIZED = "BPE pre-tokenizer was not recognized"
# The regexes of the Split pre-tokenizers llama.cpp implements under these names (Llama 3, Qwen2).
_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
# Pre-tokenizer definitions (as `signature` writes them) and the llama.cpp names they equal.
KNOWN: dict[tuple[str, ...], tuple[str, ...]] = {
    ("ByteLevel:regex",): ("gpt-2", "smollm"),
    ("Digits:individual", "ByteLevel:regex"): ("smollm", "gpt-2"),
    (f"Split:{_LLAMA3_SPLIT}", "ByteLevel"): ("llama-bpe",),
    (f"Split:{_QWEN2_SPLIT}", "ByteLevel"): ("qwen2",),
}
# Tried after the definition's own match, most common first.
FALLBACK = ("gpt-2", "smollm", "llama-bpe", "qwen2")


def declared(model_dir: Path) -> dict[str, Any] | None:
    """tokenizer.json's own pre-tokenizer definition; None when there is none (not a BPE tokenizer.json)."""
    try:
        definition = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8")).get("pre_tokenizer")
    except (OSError, ValueError, AttributeError, RecursionError):
        return None
    return definition if isinstance(definition, dict) else None


def signature(definition: dict[str, Any] | None) -> tuple[str, ...]:
    """The parts of a pre-tokenizer definition that decide how text is split, one string per step."""
    if not definition:
        return ()
    steps = definition.get("pretokenizers") if definition.get("type") == "Sequence" else [definition]
    parts: list[str] = []
    for step in steps or []:
        kind = str(step.get("type"))
        if kind == "ByteLevel":
            parts.append("ByteLevel:regex" if step.get("use_regex", True) else "ByteLevel")
        elif kind == "Split":
            pattern = step.get("pattern") or {}
            parts.append(f"Split:{pattern.get('Regex', pattern.get('String', ''))}")
        elif kind == "Digits":
            parts.append("Digits:individual" if step.get("individual_digits") else "Digits")
        else:
            parts.append(kind)
    return tuple(parts)


def candidates(model_dir: Path) -> list[str]:
    """llama.cpp pre-tokenizer names to try: those the definition equals first, then the common ones."""
    own = KNOWN.get(signature(declared(model_dir)), ())
    return list(dict.fromkeys([*own, *FALLBACK]))


def tokenization_agreement(gguf_file: Path, tokenizer: PreTrainedTokenizerBase) -> Agreement:
    """How a GGUF's vocabulary (a vocabulary-only file is enough) tokenizes the sample, against `tokenizer`."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf_file), vocab_only=True, verbose=False)
    try:
        return compare_tokenization(llm, tokenizer)
    finally:
        llm.close()


def main(argv: list[str]) -> None:
    """Run llama.cpp's converter script with `name` as the answer where its own recognition gives none."""
    name, script, *args = argv
    sys.path.insert(0, str(Path(script).parent))
    from conversion.base import TextModel  # llama.cpp's converter package, beside its script

    recognise = TextModel.get_vocab_base_pre

    def get_vocab_base_pre(self: Any, tokenizer: Any) -> str:
        try:
            return str(recognise(self, tokenizer))
        except NotImplementedError:
            print(f"Studio: pre-tokenizer not recognised by hash; using {name!r}, proven by tokenization "
                  "agreement", flush=True)
            return name

    TextModel.get_vocab_base_pre = get_vocab_base_pre
    sys.argv = [script, *args]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
