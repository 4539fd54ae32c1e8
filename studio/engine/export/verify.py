"""Prove a GGUF file behaves like the model it came from, and say so plainly when it does not.

Each prompt is rendered through the model's chat template, and the GGUF model answers it greedily.
At every answer position the merged HF model (fp32) is asked for its top-1 next token on the same
tokens: the share of positions where both agree is the headline figure. Letting the fast llama.cpp side
generate keeps the HF side to one forward pass per prompt. The chat template embedded in the GGUF,
which Ollama and LM Studio use, must render exactly the prompt the model was trained with.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.engine.errors import StudioError
from studio.engine.export.progress import Steps

if TYPE_CHECKING:
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

REPORT_FILE = "verification.json"
PASS_THRESHOLD = 0.9
ANSWER_TOKENS = 24
# Added to the profile's example prompts so agreement is measured over varied text, not three questions.
EXTRA_PROMPTS = (
    "Explain in two sentences why the sky is blue.",
    "Write a short, polite email asking to move a meeting to Friday.",
    "List three tips for staying focused while studying.",
)
_SMALL_MODEL_PARAMS = 1_000_000_000


@dataclass
class PromptCheck:
    prompt: str
    agreement: float
    positions: int
    gguf_answer: str


@dataclass
class VerificationReport:
    gguf_file: str
    quant: str
    agreement: float
    threshold: float
    passed: bool
    positions: int
    tokenizer_match: bool
    template_match: bool
    prompts: list[PromptCheck] = field(default_factory=list)
    recommendation: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        text = (f"Verification {verdict}: the {self.quant} GGUF picks the same next token as your model at "
                f"{self.agreement:.0%} of {self.positions} positions (needed: {self.threshold:.0%}).")
        return f"{text} {self.recommendation}".strip()

    def write(self, folder: Path) -> Path:
        path = folder / REPORT_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        return path


def verify_gguf(
    gguf_file: Path,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    quant: str,
    example_prompts: list[str],
    system_prompt: str = "",
    steps: Steps | None = None,
    threshold: float = PASS_THRESHOLD,
) -> VerificationReport:
    """Compare `gguf_file` with the merged HF `model` it was made from; a mismatch is reported, not raised."""
    steps = steps or Steps()
    started = time.perf_counter()
    prompts = list(dict.fromkeys([*example_prompts, *EXTRA_PROMPTS]))
    checks: list[PromptCheck] = []
    template_match = tokenizer_match = True
    matches = total = 0
    llm = _load_gguf(gguf_file)
    try:
        embedded = _embedded_template(llm, tokenizer)
        for index, prompt in enumerate(prompts):
            steps.report(f"Checking the GGUF on prompt {index + 1} of {len(prompts)}", index / len(prompts))
            messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
                {"role": "user", "content": prompt}]
            text = str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
            template_match &= embedded is not None and embedded(messages=messages).prompt == text  # type: ignore[arg-type]
            prompt_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            tokenizer_match &= llm.tokenize(text.encode("utf-8"), add_bos=False, special=True) == prompt_ids
            answer_ids, got = _gguf_greedy(llm, prompt_ids, {llm.token_eos(), tokenizer.eos_token_id})
            expected = _hf_top1(model, prompt_ids + answer_ids, len(prompt_ids))
            agree = sum(int(a == b) for a, b in zip(expected, got, strict=True))
            matches, total = matches + agree, total + len(expected)
            checks.append(PromptCheck(prompt, round(agree / len(expected), 4), len(expected),
                                      str(tokenizer.decode(answer_ids, skip_special_tokens=True)).strip()))
    finally:
        llm.close()
    agreement = matches / total if total else 0.0
    passed = agreement >= threshold and tokenizer_match and template_match
    report = VerificationReport(
        gguf_file=gguf_file.name, quant=quant, agreement=round(agreement, 4), threshold=threshold,
        passed=passed, positions=total, tokenizer_match=tokenizer_match, template_match=template_match,
        prompts=checks, seconds=round(time.perf_counter() - started, 2),
        recommendation=_recommendation(passed, quant, tokenizer_match and template_match,
                                       model.num_parameters()),
    )
    steps.report(report.summary(), 1.0)
    return report


def _load_gguf(gguf_file: Path) -> Llama:
    try:
        from llama_cpp import Llama
    except ImportError:
        raise StudioError(
            what="llama-cpp-python is not installed, so Studio cannot check the GGUF file.",
            why="It is the runtime Studio uses to load GGUF files.",
            actions=["Run Studio's setup again: scripts/setup.sh"],
            code="llama_cpp_missing",
        ) from None
    try:
        # llama-cpp-python's default thread count (half the logical CPUs) avoids spinning threads on a
        # busy machine, which made this step ten times slower in measurements.
        return Llama(model_path=str(gguf_file), n_ctx=512, logits_all=True, verbose=False, seed=0)
    except ValueError as exc:
        raise StudioError(
            what="The GGUF file Studio just made cannot be loaded.",
            why=str(exc),
            actions=["Export again; if it fails again, export as f16.", "Check the free disk space."],
            code="gguf_unloadable",
        ) from None


def _embedded_template(llm: Llama, tokenizer: PreTrainedTokenizerBase) -> Jinja2ChatFormatter | None:
    """The chat template stored in the GGUF, rendered the way llama.cpp-based apps render it."""
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    template = llm.metadata.get("tokenizer.chat_template")
    if not template:
        return None
    return Jinja2ChatFormatter(template=template, eos_token=tokenizer.eos_token or "",
                               bos_token=tokenizer.bos_token or "")


def _gguf_greedy(llm: Llama, prompt_ids: list[int], stop_ids: set[int]) -> tuple[list[int], list[int]]:
    """The GGUF model's greedy answer, and its top-1 at each position from the first answer token on."""
    llm.reset()
    llm.eval(prompt_ids)
    answer: list[int] = []
    top1 = [int(llm.scores[len(prompt_ids) - 1].argmax())]
    while top1[-1] not in stop_ids and len(answer) < ANSWER_TOKENS:
        answer.append(top1[-1])
        llm.eval([top1[-1]])
        top1.append(int(llm.scores[llm.n_tokens - 1].argmax()))
    return answer, top1


def _hf_top1(model: PreTrainedModel, ids: list[int], prompt_len: int) -> list[int]:
    """The HF model's top-1 next token at the same positions, in one forward pass."""
    import torch

    with torch.inference_mode():
        logits = model(torch.tensor([ids])).logits[0]
    return logits[prompt_len - 1:].argmax(-1).tolist()


def _recommendation(passed: bool, quant: str, formats_match: bool, parameters: int) -> str:
    if passed:
        return ""
    if not formats_match:
        return ("The GGUF renders or splits prompts differently from your model (chat template or "
                "tokenizer), so apps would feed it the wrong text. Please report this; meanwhile use the "
                "merged Hugging Face export.")
    if quant.lower() == "f16":
        return ("Even the unquantized f16 file disagrees with your model; the conversion went wrong. "
                "Please report this; meanwhile use the merged Hugging Face export.")
    if parameters < _SMALL_MODEL_PARAMS:
        return (f"Small models ({parameters / 1e6:.0f}M parameters) lose too much at {quant}. "
                "Export f16 (or q8_0) instead: --quant f16.")
    return f"{quant} loses too much for this model. Try Q5_K_M, q8_0 or f16."
