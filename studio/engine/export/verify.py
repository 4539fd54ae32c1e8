"""Prove a GGUF file behaves like the model it came from, and say so plainly when it does not.

Each prompt is rendered through the model's chat template, and the GGUF model answers it greedily.
At every answer position the merged HF model (fp32) is asked for its top-1 next token on the same
tokens: the share of positions where both agree is the headline figure. Letting the fast llama.cpp side
generate keeps the HF side to one forward pass per prompt. The chat template embedded in the GGUF,
which Ollama and LM Studio use, must render exactly the prompt the model was trained with.

An adapter GGUF is checked the same way, loaded by llama.cpp on top of the base model's GGUF. Agreement
alone cannot tell an adapter that was applied from one that was silently dropped (a weak adapter rarely
changes the top-1 token), so the same answers are replayed on the base GGUF alone and the change in the
next-token scores is reported; an adapter that changes nothing fails.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.engine.errors import StudioError
from studio.engine.export.tokenization import compare_tokenization
from studio.engine.progress import Span

if TYPE_CHECKING:
    import numpy as np
    from llama_cpp import Llama
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter
    from numpy.typing import NDArray
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
# Mean, over answer positions, of the largest next-token score change the adapter causes. A zero adapter
# changes nothing at all (exactly 0); a real one, even a weak one, moves scores by 0.01 or more.
ADAPTER_EFFECT_MIN = 1e-3
# Half the logical CPUs for both runtimes: all of them makes threads spin against each other and any other
# work. Measured on a busy 2-core machine: llama.cpp's prompt step 10 s instead of 0.1 s (its batch default
# is all CPUs), and the HF forward pass 7 s instead of 0.4 s (torch's default is all cores).
_THREADS = max((os.cpu_count() or 2) // 2, 1)


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
    adapter_file: str = ""  # set when an adapter GGUF was checked on top of `gguf_file` (the base model)
    adapter_effect: float | None = None  # mean largest next-token score change the adapter causes
    adapter_changed: float | None = None  # share of positions where it changes the top-1 token
    # Share of varied sample texts (code, numbers, accents, emoji, whitespace) the GGUF tokenizes exactly as
    # the model's tokenizer does, and the texts that differ.
    tokenization_agreement: float = 1.0
    tokenization_mismatches: list[str] = field(default_factory=list)
    # Ollama exports: the chat format of the Modelfile's TEMPLATE, and the share of sample conversations on
    # which Ollama's prompt from it (with the BOS the GGUF adds) is, character for character, the prompt of
    # the model's own chat template (Studio writes no template below 100%). None for other formats.
    ollama_template: str = ""
    template_agreement: float | None = None
    template_conversations: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        subject = (f"the {self.quant} GGUF adapter on the base model's GGUF" if self.adapter_file else
                   f"the {self.quant} GGUF")
        text = (f"Verification {verdict}: {subject} picks the same next token as your model at "
                f"{self.agreement:.0%} of {self.positions} positions (needed: {self.threshold:.0%}), and "
                f"tokenizes {self.tokenization_agreement:.0%} of the sample texts exactly as your model does "
                "(needed: 100%).")
        if self.template_agreement is not None:
            text += (f" Template agreement: {self.template_agreement:.0%}: rendered as Ollama renders it, "
                     f"Studio's {self.ollama_template} template gives exactly your model's chat prompt on "
                     f"{self.template_conversations} sample conversations.")
        if self.adapter_effect is not None and self.adapter_effect >= ADAPTER_EFFECT_MIN:
            text += (f" The adapter is applied: it moves the base model's next-token scores by "
                     f"{self.adapter_effect:.2f} on average and changes its top pick at "
                     f"{self.adapter_changed or 0:.0%} of positions.")
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
    steps: Span | None = None,
    threshold: float = PASS_THRESHOLD,
    lora_path: Path | None = None,
) -> VerificationReport:
    """Compare `gguf_file` with the merged HF `model` it was made from; a mismatch is reported, not raised.

    With `lora_path`, `gguf_file` is the base model and the adapter GGUF is applied on top of it, and
    `model` is the base model with the PEFT adapter merged in.
    """
    steps = steps or Span()
    answer_steps, effect_steps = (steps.sub(0.0, 0.85), steps.sub(0.85, 1.0)) if lora_path else (steps, None)
    started = time.perf_counter()
    prompts = list(dict.fromkeys([*example_prompts, *EXTRA_PROMPTS]))
    checks: list[PromptCheck] = []
    template_match = tokenizer_match = True
    matches = total = 0
    replays: list[tuple[list[int], list[int], NDArray[np.float32]]] = []
    llm = _load_gguf(gguf_file, lora_path)
    try:
        tokenization = compare_tokenization(llm, tokenizer)
        embedded = _embedded_template(llm, tokenizer)
        for index, prompt in enumerate(prompts):
            answer_steps.report(f"Checking the GGUF on prompt {index + 1} of {len(prompts)}",
                                index / len(prompts))
            messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
                {"role": "user", "content": prompt}]
            text = str(tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True))
            template_match &= embedded is not None and embedded(messages=messages).prompt == text  # type: ignore[arg-type]
            prompt_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
            tokenizer_match &= llm.tokenize(text.encode("utf-8"), add_bos=False, special=True) == prompt_ids
            answer_ids, got = _gguf_greedy(llm, prompt_ids, {llm.token_eos(), tokenizer.eos_token_id})
            if lora_path is not None:
                replays.append((prompt_ids, answer_ids, _answer_scores(llm, len(prompt_ids))))
            expected = _hf_top1(model, prompt_ids + answer_ids, len(prompt_ids))
            agree = sum(int(a == b) for a, b in zip(expected, got, strict=True))
            matches, total = matches + agree, total + len(expected)
            checks.append(PromptCheck(prompt, round(agree / len(expected), 4), len(expected),
                                      str(tokenizer.decode(answer_ids, skip_special_tokens=True)).strip()))
    finally:
        llm.close()
    effect = changed = None
    if effect_steps is not None:
        effect_steps.report("Checking that the adapter changes the base model's answers", 0.0)
        effect, changed = _adapter_effect(gguf_file, replays)
    agreement = matches / total if total else 0.0
    applied = effect is None or effect >= ADAPTER_EFFECT_MIN
    tokenizer_match &= tokenization.share == 1.0
    passed = agreement >= threshold and tokenizer_match and template_match and applied
    report = VerificationReport(
        gguf_file=gguf_file.name, quant=quant, agreement=round(agreement, 4), threshold=threshold,
        passed=passed, positions=total, tokenizer_match=tokenizer_match, template_match=template_match,
        prompts=checks, seconds=round(time.perf_counter() - started, 2),
        recommendation=_recommendation(passed, quant, tokenizer_match and template_match,
                                       model.num_parameters(), adapter=lora_path is not None, applied=applied),
        adapter_file=lora_path.name if lora_path else "",
        adapter_effect=None if effect is None else round(effect, 4),
        adapter_changed=None if changed is None else round(changed, 4),
        tokenization_agreement=round(tokenization.share, 4), tokenization_mismatches=tokenization.mismatches,
    )
    steps.report(report.summary(), 1.0)
    return report


def _load_gguf(gguf_file: Path, lora_path: Path | None = None) -> Llama:
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
        return Llama(model_path=str(gguf_file), n_ctx=512, logits_all=True, verbose=False, seed=0,
                     n_threads=_THREADS, n_threads_batch=_THREADS,
                     lora_path=str(lora_path) if lora_path else None)
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
    llm.reset()  # type: ignore[no-untyped-call]  # llama-cpp-python leaves it untyped
    llm.eval(prompt_ids)
    answer: list[int] = []
    top1 = [int(llm.scores[len(prompt_ids) - 1].argmax())]
    while top1[-1] not in stop_ids and len(answer) < ANSWER_TOKENS:
        answer.append(top1[-1])
        llm.eval([top1[-1]])
        top1.append(int(llm.scores[llm.n_tokens - 1].argmax()))
    return answer, top1


def _answer_scores(llm: Llama, prompt_len: int) -> NDArray[np.float32]:
    """The next-token scores at the positions `_gguf_greedy` just compared (a copy: the next prompt reuses them)."""
    import numpy as np

    return np.array(llm.scores[prompt_len - 1:llm.n_tokens], dtype=np.float32)


def _adapter_effect(
    base_file: Path, replays: list[tuple[list[int], list[int], NDArray[np.float32]]]
) -> tuple[float, float]:
    """How much the adapter moves the base GGUF's scores: (mean largest change, share of changed top-1 picks).

    Each answer is fed to the base alone token by token, exactly as `_gguf_greedy` fed it with the
    adapter, so the only difference between the two sets of scores is the adapter.
    """
    import numpy as np

    llm = _load_gguf(base_file)
    largest: list[float] = []
    changed = 0
    try:
        for prompt_ids, answer_ids, adapted in replays:
            llm.reset()  # type: ignore[no-untyped-call]
            llm.eval(prompt_ids)
            for token in answer_ids:
                llm.eval([token])
            base = _answer_scores(llm, len(prompt_ids))
            largest += np.abs(adapted - base).max(axis=-1).tolist()
            changed += int((adapted.argmax(-1) != base.argmax(-1)).sum())
    finally:
        llm.close()
    return (float(np.mean(largest)), changed / len(largest)) if largest else (0.0, 0.0)


def _hf_top1(model: PreTrainedModel, ids: list[int], prompt_len: int) -> list[int]:
    """The HF model's top-1 next token at the same positions, in one forward pass."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(min(previous, _THREADS))
    try:
        with torch.inference_mode():
            logits = model(torch.tensor([ids])).logits[0]
    finally:
        torch.set_num_threads(previous)
    top: list[int] = logits[prompt_len - 1:].argmax(-1).tolist()
    return top


def _recommendation(
    passed: bool, quant: str, formats_match: bool, parameters: int, *, adapter: bool = False, applied: bool = True
) -> str:
    if passed:
        return ""
    if not applied:
        return ("The adapter changes nothing: with it, llama.cpp gives exactly the base model's answers. The "
                "run's adapter may be untrained (check its training loss), or llama.cpp did not apply it; "
                "if the run did learn, use the merged export (--format gguf) meanwhile.")
    if adapter and formats_match:
        return ("llama.cpp applies the adapter differently from your model. Please report this; meanwhile "
                "use the merged export (--format gguf), which does not depend on applying an adapter.")
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
