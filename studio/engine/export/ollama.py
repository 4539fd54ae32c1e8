"""Ollama: a Modelfile whose TEMPLATE gives the model exactly the prompt its own chat template gives, and
`ollama create` when present.

Ollama templates are Go templates, not Jinja, so the model's Jinja chat template cannot be copied over.
Studio recognises the chat format from its special markers and writes that format's Go template, but only
once it is proven: Studio renders the template for sample conversations the way Ollama does (messages
collated, the Modelfile's SYSTEM added), puts in front the BOS token that Ollama's runner has llama.cpp
add where the GGUF says so, and requires exactly the text of the model's apply_chat_template. Otherwise the
export is refused: a wrong template is the most common reason an exported model "talks gibberish" or never
stops in Ollama. (Whether the GGUF then splits that text into the model's tokens is the verification's
tokenization agreement.) The Python rendering below is the Go template's twin;
tests/engine/export/test_ollama_template.py proves that Go's text/template, the engine Ollama uses, renders
the Go template to the same text.
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from studio.engine.errors import StudioError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

MODELFILE = "Modelfile"
Message = dict[str, str]


@dataclass(frozen=True)
class ChatFormat:
    """One chat layout, as the text around each turn; the Go template and its Python rendering both come from it."""

    name: str  # shown to people
    marker: str  # a special token that identifies the format in a Jinja chat template
    user: tuple[str, str]  # text before and after a user message
    assistant: tuple[str, str]
    system: tuple[str, str] | None = None  # the system prompt's own turn; None folds it into a user turn
    fold: Literal["first", "last"] = "first"  # the user turn the folded prompt opens, then a blank line
    generation: str = ""  # what opens the model's answer


# Checked in this order: ChatML first, as SmolLM2's vocabulary (reused by many models) has its markers.
FORMATS = (
    ChatFormat("ChatML", "<|im_start|>", ("<|im_start|>user\n", "<|im_end|>\n"),
               ("<|im_start|>assistant\n", "<|im_end|>\n"), ("<|im_start|>system\n", "<|im_end|>\n"),
               generation="<|im_start|>assistant\n"),
    ChatFormat("Llama 3", "<|start_header_id|>", ("<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>"),
               ("<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>"),
               ("<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>"),
               generation="<|start_header_id|>assistant<|end_header_id|>\n\n"),
    ChatFormat("Gemma", "<start_of_turn>", ("<start_of_turn>user\n", "<end_of_turn>\n"),
               ("<start_of_turn>model\n", "<end_of_turn>\n"), fold="first", generation="<start_of_turn>model\n"),
    ChatFormat("Mistral", "[INST]", ("[INST] ", "[/INST]"), (" ", "</s>"), fold="last"),
    ChatFormat("Phi-3", "<|assistant|>", ("<|user|>\n", "<|end|>\n"), ("<|assistant|>\n", "<|end|>\n"),
               ("<|system|>\n", "<|end|>\n"), generation="<|assistant|>\n"),
)
# The sample conversations a template is proven on, after the system prompt: one turn, and the issue's
# user + assistant + user, and a longer one (a format that folds the system prompt into one turn only).
_USER = ("What is 2 plus 2?", "And times 3?", "Thanks! Now say goodbye.")
_ANSWER = ("2 plus 2 makes 4.", "4 times 3 makes 12.")
_SAMPLES: tuple[tuple[Message, ...], ...] = (
    ({"role": "user", "content": _USER[0]},),
    ({"role": "user", "content": _USER[0]}, {"role": "assistant", "content": _ANSWER[0]},
     {"role": "user", "content": _USER[1]}),
    ({"role": "user", "content": _USER[0]}, {"role": "assistant", "content": _ANSWER[0]},
     {"role": "user", "content": _USER[1]}, {"role": "assistant", "content": _ANSWER[1]},
     {"role": "user", "content": _USER[2]}),
)


@dataclass(frozen=True)
class OllamaTemplate:
    """The Go template proven for one model, with the SYSTEM and stop tokens its Modelfile gets."""

    format: ChatFormat
    bos: str  # literal text at the template's start: the chat template begins with BOS and the GGUF adds none
    system: str  # the profile's system prompt, or the one the model's chat template adds by itself
    stops: tuple[str, ...]
    conversations: int = 0  # sample conversations proven on the GGUF, character for character; 0 before that

    @property
    def text(self) -> str:
        return go_template(self.format, self.bos)

    @property
    def agreement(self) -> float:
        """The share of sample conversations proven on the GGUF (1.0 once proven: less is refused)."""
        return self.conversations / len(_SAMPLES)

    def samples(self) -> list[list[Message]]:
        """The conversations the template is proven on, as Ollama receives them (SYSTEM first, when set)."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return [head + list(sample) for sample in _SAMPLES]


@dataclass(frozen=True)
class OllamaResult:
    modelfile: Path
    model_name: str
    command: str  # what to run by hand when Ollama is not installed
    created: bool
    smoke_answer: str = ""

    @property
    def run_command(self) -> str:
        """How to try the model once Ollama has it, ready to paste into a terminal."""
        return shlex.join(["ollama", "run", self.model_name])


def go_template(chat: ChatFormat, bos: str = "") -> str:
    """The Ollama TEMPLATE for `chat`. No whitespace-trimming actions: every character is the format's."""
    parts = [bos]
    if chat.system:
        parts += ["{{ if .System }}", chat.system[0], "{{ .System }}", chat.system[1], "{{ end }}"]
    elif chat.fold == "first":
        parts.append("{{ $first := true }}")
    parts += ['{{ range $i, $_ := .Messages }}{{ if eq .Role "user" }}', chat.user[0]]
    if not chat.system:
        where = "$first" if chat.fold == "first" else "(eq (len (slice $.Messages $i)) 1)"
        parts += ["{{ if and $.System ", where, " }}{{ $.System }}\n\n{{ end }}"]
        parts += ["{{ $first = false }}"] if chat.fold == "first" else []
    parts += ["{{ .Content }}", chat.user[1], '{{ else if eq .Role "assistant" }}', chat.assistant[0],
              "{{ .Content }}", chat.assistant[1], "{{ end }}{{ end }}", chat.generation]
    return "".join(parts)


def render(chat: ChatFormat, messages: Sequence[Message], bos: str = "") -> str:
    """What Ollama renders from `go_template(chat, bos)` for `messages`, its collation included."""
    system, turns = collate(messages)
    parts = [bos]
    if chat.system and system:
        parts += [chat.system[0], system, chat.system[1]]
    first = True
    for index, message in enumerate(turns):
        if message["role"] == "user":
            here = first if chat.fold == "first" else index == len(turns) - 1
            parts += [chat.user[0], f"{system}\n\n" if system and not chat.system and here else "",
                      message["content"], chat.user[1]]
            first = False
        elif message["role"] == "assistant":
            parts += [chat.assistant[0], message["content"], chat.assistant[1]]
    return "".join(parts) + chat.generation


def collate(messages: Sequence[Message]) -> tuple[str, list[Message]]:
    """Ollama's collation: the system prompt of all system messages joined by a blank line, and the messages
    with consecutive ones of the same role merged (system messages stay in the list)."""
    system = [message["content"] for message in messages if message["role"] == "system"]
    turns: list[Message] = []
    for message in messages:
        if turns and turns[-1]["role"] == message["role"] != "tool":
            turns[-1] = {**turns[-1], "content": f"{turns[-1]['content']}\n\n{message['content']}"}
        else:
            turns.append(dict(message))
    return "\n\n".join(system), turns


def chat_format(chat_template: str | None) -> ChatFormat:
    """The chat format a Jinja chat template is written in, by its markers; an unknown one is a clear error."""
    for chat in FORMATS:
        if chat_template and chat.marker in chat_template:
            return chat
    raise _cannot_template(
        "It has no chat template." if not chat_template else
        "Its chat template is none of those Studio knows: ChatML (SmolLM2, Qwen), Llama 3, Mistral, Gemma or "
        "Phi-3.", "chat_template_unknown")


def ollama_template(
    tokenizer: PreTrainedTokenizerBase, system_prompt: str, eos_ids: Iterable[int] = ()
) -> OllamaTemplate:
    """The template for this tokenizer, checked as text against apply_chat_template on the sample
    conversations (with or without the chat template's own BOS, which the GGUF may add instead).

    `eos_ids` are the generation config's end-of-sequence ids. Runs before the GGUF exists, so a model
    Studio cannot template is refused before minutes of conversion."""
    chat = chat_format(getattr(tokenizer, "chat_template", None))
    template = OllamaTemplate(chat, "", system_prompt or _default_system(chat, tokenizer),
                              _stop_tokens(tokenizer, eos_ids))
    bos = tokenizer.bos_token or ""
    for leading in dict.fromkeys(("", bos)):
        if all(_chat_text(tokenizer, sample) == render(chat, sample, leading) for sample in template.samples()):
            return dataclasses.replace(template, bos=leading)
    raise _cannot_template(
        f"Its chat template looks like {chat.name} but lays out conversations differently from the {chat.name} "
        "template Studio writes, so Ollama would feed the model a different prompt from the one it was "
        "trained on.", "chat_template_unmatched")


def prove_on_gguf(template: OllamaTemplate, gguf_file: Path, tokenizer: PreTrainedTokenizerBase) -> OllamaTemplate:
    """`template`, adjusted to whether the GGUF adds a BOS token itself (as Ollama's runner asks llama.cpp
    to), once every sample conversation gives, character for character, the model's own chat prompt: that
    BOS, if any, followed by the rendered template."""
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf_file), vocab_only=True, verbose=False)
    try:
        added = llm.detokenize(llm.tokenize(b"", add_bos=True, special=True), special=True).decode("utf-8")
    finally:
        llm.close()
    proven = dataclasses.replace(template, bos="" if added else template.bos)
    samples = proven.samples()
    agreeing = sum(int(added + render(proven.format, sample, proven.bos) == _chat_text(tokenizer, sample))
                   for sample in samples)
    if agreeing < len(samples):
        raise _cannot_template(
            f"Ollama would feed the model another prompt than its chat template gives on {len(samples) - agreeing} "
            f"of {len(samples)} sample conversations"
            + (f": the GGUF adds a BOS token ({added}) at the start, which the chat template does not have."
               if added and not template.bos else "."), "chat_template_prompt_differs")
    return dataclasses.replace(proven, conversations=agreeing)


def _chat_text(tokenizer: PreTrainedTokenizerBase, messages: Sequence[Message], generation: bool = True) -> str | None:
    """apply_chat_template's prompt, or None where the template refuses the conversation (no system role)."""
    from jinja2 import TemplateError

    try:
        return str(tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=generation))
    except TemplateError:
        return None


def _default_system(chat: ChatFormat, tokenizer: PreTrainedTokenizerBase) -> str:
    """The system prompt a chat template adds by itself to a conversation without one (Qwen2.5's "You are
    Qwen ..."), so the Modelfile's SYSTEM makes Ollama add it too; "" when it adds none."""
    if not chat.system:
        return ""
    sample = _SAMPLES[0]
    text = _chat_text(tokenizer, sample) or ""
    before, after = render(chat, [{"role": "system", "content": "\0"}, *sample]).split("\0")
    for leading in dict.fromkeys(("", tokenizer.bos_token or "")):
        start, end = len(leading + before), len(text) - len(after)
        if text.startswith(leading + before) and text.endswith(after) and start < end:
            return text[start:end]
    return ""


def _stop_tokens(tokenizer: PreTrainedTokenizerBase, eos_ids: Iterable[int]) -> tuple[str, ...]:
    """What the model emits to end its turn: the special token the chat template puts right after an
    answer, the eos token and the generation config's eos tokens."""
    answer = _ANSWER[0]
    text = _chat_text(tokenizer, [{"role": "user", "content": _USER[0]}, {"role": "assistant", "content": answer}],
                      generation=False) or ""
    end = text.rfind(answer)
    after = tokenizer(text[end + len(answer):], add_special_tokens=False)["input_ids"] if end >= 0 else []
    special = {*tokenizer.all_special_tokens, *tokenizer.get_added_vocab()}
    marker = [token for token in tokenizer.convert_ids_to_tokens(after[:1]) if token in special]
    found = [*marker, tokenizer.eos_token, *tokenizer.convert_ids_to_tokens(list(eos_ids))]
    return tuple(dict.fromkeys(token for token in found if token))


def _cannot_template(why: str, code: str) -> StudioError:
    return StudioError(
        what="Studio cannot write an Ollama template for this model's chat format.",
        why=why,
        actions=["Export as GGUF instead (--format gguf): the file carries the model's own chat template, "
                 "which llama.cpp-based apps (llama-server --jinja, LM Studio) apply as it is.",
                 "Or fine-tune a model of a family Studio templates for Ollama: ChatML (SmolLM2, Qwen), "
                 "Llama 3, Mistral, Gemma or Phi-3."],
        code=code,
    )


def model_name_for(run_id: str) -> str:
    """A name Ollama accepts: lower case letters, digits, dashes, dots and underscores."""
    return "studio-" + (re.sub(r"[^a-z0-9._-]+", "-", run_id.lower()).strip("-.") or "model")


def render_modelfile(gguf_name: str, template: OllamaTemplate, adapter_name: str | None = None) -> str:
    """The Modelfile for the GGUF `gguf_name` beside it; with `adapter_name`, that GGUF is the base model
    and Ollama applies the adapter GGUF on top (an ADAPTER line), keeping one copy of the base for many runs."""
    lines = [f"FROM ./{gguf_name}"] + ([f"ADAPTER ./{adapter_name}"] if adapter_name else [])
    lines += ["", f'TEMPLATE """{template.text}"""', ""]
    if template.system:
        lines += [f"SYSTEM {modelfile_quote(template.system, triple=True)}", ""]
    lines += [f"PARAMETER stop {modelfile_quote(token)}" for token in template.stops]
    return "\n".join(lines) + "\n"


def modelfile_quote(value: str, triple: bool = False) -> str:
    """A Modelfile value that reads back as `value`: backslashes and quotes escaped with a backslash (so a
    triple quote inside can never close the string), and triple quotes when it spans lines."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"""{escaped}"""' if triple or "\n" in value else f'"{escaped}"'


def create_in_ollama(folder: Path, model_name: str, smoke_prompt: str) -> OllamaResult:
    """Register the model with Ollama and ask it one question, or give the command to do so by hand."""
    modelfile = folder / MODELFILE
    command = f"cd {shlex.quote(str(folder))} && {shlex.join(['ollama', 'create', model_name, '-f', MODELFILE])}"
    executable = shutil.which("ollama")
    if executable is None:
        return OllamaResult(modelfile, model_name, command, created=False)
    done = subprocess.run([executable, "create", model_name, "-f", MODELFILE], cwd=folder,
                          capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        raise StudioError(
            what="Ollama refused the exported model.",
            why=(done.stderr.strip().splitlines() or ["no message"])[-1],
            actions=["Check that the Ollama server is running (`ollama serve`).",
                     f"Try it by hand: {command}"],
            code="ollama_create_failed",
        )
    smoke = subprocess.run([executable, "run", model_name, smoke_prompt], capture_output=True, text=True,
                           timeout=300, check=False)
    return OllamaResult(modelfile, model_name, command, created=True, smoke_answer=smoke.stdout.strip())
