"""Tiny models of the five families people bring (Llama 3, Qwen2.5, Gemma 3, Mistral, Phi-3), built offline.

Each has random weights from its family's own transformers config class (2 layers, hidden size 64) and a
real tokenizer carrying the family's own chat template (templates/, the models' published Jinja) and special
tokens. The BPE families reuse the built-in SmolLM2 tokenizer with the family's markers added; the
families whose llama.cpp converter reads a sentencepiece model (Gemma, Mistral, Phi-3) get a tiny one
trained here with the sentencepiece package. Nothing is downloaded.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TEMPLATES = Path(__file__).parent / "templates"
HIDDEN = 64


@dataclass(frozen=True)
class Family:
    name: str
    config_class: str  # transformers config class
    model_class: str  # transformers model class, also config.json's architecture
    tokenizer: str  # "smollm2" (BPE, reused) or "spm" (trained here)
    specials: dict[str, str]  # bos/eos/pad/unk token strings
    added: tuple[str, ...]  # the family's chat markers, added as special tokens
    end_of_turn: str  # the token the model emits at the end of its turn
    extra_eos: tuple[str, ...] = ()  # generation_config's eos ids beyond the tokenizer's eos
    config: dict[str, Any] = field(default_factory=dict)
    tokenizer_class: str = ""
    rstrip: tuple[str, ...] = ()  # markers that swallow the whitespace after them (Phi-3's role tokens)
    # Mistral's and Phi-3's tokenizer.json (Llama 2 style) prepend "▁" to every text piece, as llama.cpp does
    prepend_space: bool = False

    @property
    def chat_template(self) -> str:
        return (TEMPLATES / f"{self.name}.jinja").read_text(encoding="utf-8").removesuffix("\n")


FAMILIES: dict[str, Family] = {
    family.name: family for family in (
        Family("llama3", "LlamaConfig", "LlamaForCausalLM", "smollm2",
               {"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"},
               ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
               end_of_turn="<|eot_id|>", extra_eos=("<|end_of_text|>",), config={"tie_word_embeddings": True}),
        Family("qwen2", "Qwen2Config", "Qwen2ForCausalLM", "smollm2",
               {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>"},
               ("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
               end_of_turn="<|im_end|>", extra_eos=("<|endoftext|>",), config={"tie_word_embeddings": True}),
        Family("gemma3", "Gemma3TextConfig", "Gemma3ForCausalLM", "spm",
               {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>", "unk_token": "<unk>"},
               ("<start_of_turn>", "<end_of_turn>"), end_of_turn="<end_of_turn>", extra_eos=("<end_of_turn>",),
               # Gemma 3's own layer pattern (every sixth layer global), which llama.cpp assumes: both
               # layers of a 2-layer model are sliding-window layers.
               config={"head_dim": 16, "sliding_window": 512, "query_pre_attn_scalar": 16,
                       "tie_word_embeddings": True},
               tokenizer_class="GemmaTokenizer"),
        Family("mistral", "MistralConfig", "MistralForCausalLM", "spm",
               {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
               ("[INST]", "[/INST]"), end_of_turn="</s>", config={"head_dim": 16, "sliding_window": None},
               tokenizer_class="LlamaTokenizer", prepend_space=True),
        Family("phi3", "Phi3Config", "Phi3ForCausalLM", "spm",
               {"bos_token": "<s>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "unk_token": "<unk>"},
               ("<|endoftext|>", "<|assistant|>", "<|end|>", "<|system|>", "<|user|>"),
               end_of_turn="<|end|>", extra_eos=("<|end|>",),
               config={"original_max_position_embeddings": 1024}, tokenizer_class="LlamaTokenizer",
               rstrip=("<|assistant|>", "<|end|>", "<|system|>", "<|user|>"), prepend_space=True),
    )
}

# Sentencepiece ids as the real models number them: Gemma puts pad/eos/bos/unk first, Llama-style models
# (Mistral, Phi-3) unk/bos/eos.
_SPM_IDS = {
    "gemma3": {"pad_id": 0, "eos_id": 1, "bos_id": 2, "unk_id": 3, "pad_piece": "<pad>", "eos_piece": "<eos>",
               "bos_piece": "<bos>", "unk_piece": "<unk>"},
    "mistral": {"unk_id": 0, "bos_id": 1, "eos_id": 2, "pad_id": -1},
    "phi3": {"unk_id": 0, "bos_id": 1, "eos_id": 2, "pad_id": -1},
}
_CORPUS_TEXT = (
    "apple river stone cloud lamp garden window forest candle bridge What is plus makes Have a nice day Pip "
    "here You are cheerful helper Explain why the sky blue Write short polite email asking to move meeting "
    "Friday List three tips for staying focused while studying café naïve résumé über def return print "
    "Hello World The and of in it this that with from code number")
_CORPUS_WORDS = tuple(_CORPUS_TEXT.split())


def spm_corpus(lines: int = 4000, seed: int = 0) -> list[str]:
    """Varied training text for the tiny sentencepiece models: words, capitals, numbers, punctuation, code."""
    rng = random.Random(seed)
    text = []
    for _ in range(lines):
        words = " ".join(rng.choice(_CORPUS_WORDS) for _ in range(rng.randint(3, 15)))
        text.append(f"{words} {rng.randint(0, 999)} + {rng.randint(0, 99)} = ?!.,;:()[]{{}}<>'\"-_/*#")
    return text


def train_spm(family: Family, target: Path) -> Path:
    """A 700-piece BPE sentencepiece model with byte fallback, as Llama-style and Gemma tokenizers have.

    Gemma and Mistral carry their chat markers inside the sentencepiece model (as the real ones do); Phi-3
    adds them after it."""
    import sentencepiece

    inside = () if family.name == "phi3" else family.added

    model = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(spm_corpus()), model_writer=model, vocab_size=700, model_type="bpe",
        byte_fallback=True, character_coverage=1.0, hard_vocab_limit=False, split_digits=True,
        remove_extra_whitespaces=False, normalization_rule_name="identity", minloglevel=2,
        user_defined_symbols=list(inside), **_SPM_IDS[family.name],
    )
    target.write_bytes(model.getvalue())
    return target


def build_tokenizer(family: Family, folder: Path, smollm2_dir: Path) -> Any:
    """The family's tokenizer, saved in `folder` (which must exist)."""
    from transformers import AutoTokenizer

    if family.tokenizer == "spm":
        train_spm(family, folder / "tokenizer.model")
        config = {"tokenizer_class": family.tokenizer_class, **family.specials}
        (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
        tokenizer = AutoTokenizer.from_pretrained(folder)
        if family.prepend_space:
            from tokenizers import normalizers

            backend = tokenizer.backend_tokenizer
            backend.normalizer = normalizers.Sequence([normalizers.Prepend("▁"), normalizers.Replace(" ", "▁")])
            backend.pre_tokenizer = None
    else:
        tokenizer = AutoTokenizer.from_pretrained(smollm2_dir)
        tokenizer.pad_token = None
        tokenizer.bos_token = None
    from tokenizers import AddedToken

    markers = [AddedToken(token, rstrip=token in family.rstrip, normalized=False, special=True)
               for token in family.added]
    tokenizer.add_special_tokens({"additional_special_tokens": markers})
    for role, token in family.specials.items():
        setattr(tokenizer, role, token)
    tokenizer.chat_template = family.chat_template
    tokenizer.save_pretrained(folder)
    return tokenizer


def build_family(name: str, target: Path, smollm2_dir: Path) -> Path:
    """Write the tiny `name` model (weights, config, generation config, tokenizer) into `target`."""
    import torch
    import transformers
    from transformers import GenerationConfig

    family = FAMILIES[name]
    staging = target.with_name(target.name + ".partial")
    staging.mkdir(parents=True)
    tokenizer = build_tokenizer(family, staging, smollm2_dir)
    ids = {role: tokenizer.convert_tokens_to_ids(token) for role, token in family.specials.items()}
    config = getattr(transformers, family.config_class)(
        vocab_size=len(tokenizer), hidden_size=HIDDEN, intermediate_size=2 * HIDDEN, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        bos_token_id=ids.get("bos_token"), eos_token_id=ids["eos_token"], pad_token_id=ids.get("pad_token"),
        **family.config,
    )
    config.architectures = [family.model_class]
    torch.manual_seed(0)
    model = getattr(transformers, family.model_class)(config)
    model.save_pretrained(staging)
    eos = [ids["eos_token"], *(tokenizer.convert_tokens_to_ids(token) for token in family.extra_eos)]
    GenerationConfig(bos_token_id=ids.get("bos_token"), eos_token_id=list(dict.fromkeys(eos)),
                     pad_token_id=ids.get("pad_token")).save_pretrained(staging)
    staging.rename(target)
    return target


@dataclass
class FamilyModels:
    """The five tiny models, each built the first time a test asks for it and kept for the session."""

    root: Path
    smollm2_dir: Path
    builder: Callable[[str, Path, Path], Path] = build_family

    def path(self, name: str) -> Path:
        target = self.root / name
        if not (target / "config.json").exists():
            self.builder(name, target, self.smollm2_dir)
        return target
