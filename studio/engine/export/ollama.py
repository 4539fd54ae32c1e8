"""Ollama: a Modelfile whose TEMPLATE matches the model's own chat template, and `ollama create` when present.

Ollama templates are Go templates, not Jinja, so the model's Jinja chat template cannot be copied over.
Studio recognises the template family from its special markers and writes the matching Go template;
a wrong template is the most common reason an exported model "talks gibberish" in Ollama.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from studio.engine.errors import StudioError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

MODELFILE = "Modelfile"

_TEMPLATES = {
    "chatml": (
        "{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>\n{{ end }}"
        "{{- range .Messages }}{{ if ne .Role \"system\" }}<|im_start|>{{ .Role }}\n"
        "{{ .Content }}<|im_end|>\n{{ end }}{{ end }}<|im_start|>assistant\n"
    ),
    "llama3": (
        "{{- if .System }}<|start_header_id|>system<|end_header_id|>\n\n{{ .System }}<|eot_id|>{{ end }}"
        "{{- range .Messages }}{{ if ne .Role \"system\" }}<|start_header_id|>{{ .Role }}"
        "<|end_header_id|>\n\n{{ .Content }}<|eot_id|>{{ end }}{{ end }}"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    ),
    "mistral": (
        "{{- range $i, $_ := .Messages }}"
        "{{- if eq .Role \"user\" }}[INST] {{ if and $.System (eq (len (slice $.Messages $i)) 1) }}"
        "{{ $.System }}\n\n{{ end }}{{ .Content }}[/INST]"
        "{{- else if eq .Role \"assistant\" }} {{ .Content }}</s>{{- end }}{{- end }}"
    ),
    "gemma": (
        "{{- if .System }}<start_of_turn>user\n{{ .System }}<end_of_turn>\n{{ end }}"
        "{{- range .Messages }}{{ if ne .Role \"system\" }}<start_of_turn>"
        "{{ if eq .Role \"assistant\" }}model{{ else }}{{ .Role }}{{ end }}\n{{ .Content }}<end_of_turn>\n"
        "{{ end }}{{ end }}<start_of_turn>model\n"
    ),
    "phi3": (
        "{{- if .System }}<|system|>\n{{ .System }}<|end|>\n{{ end }}"
        "{{- range .Messages }}{{ if ne .Role \"system\" }}<|{{ .Role }}|>\n{{ .Content }}<|end|>\n{{ end }}{{ end }}"
        "<|assistant|>\n"
    ),
}
# Markers that identify each family in a Jinja chat template, checked in this order.
_MARKERS = (("<|im_start|>", "chatml"), ("<|start_header_id|>", "llama3"), ("<start_of_turn>", "gemma"),
            ("[INST]", "mistral"), ("<|assistant|>", "phi3"))
_STOP_CANDIDATES = ("<|im_end|>", "<|im_start|>", "<|eot_id|>", "<|end_of_text|>", "<end_of_turn>", "</s>",
                    "<|end|>")


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


def chat_family(chat_template: str | None) -> str:
    """The template family of a Jinja chat template; an unknown one is a clear error."""
    for marker, family in _MARKERS:
        if chat_template and marker in chat_template:
            return family
    raise StudioError(
        what="Studio does not know how to write an Ollama template for this model's chat format.",
        why=("It has no chat template." if not chat_template else
             "Its chat template is none of those Studio knows: ChatML (SmolLM2, Qwen), Llama 3, Mistral, "
             "Gemma or Phi-3."),
        actions=["Export as GGUF (--format gguf) and write the Modelfile's TEMPLATE by hand.",
                 "Or fine-tune a model of one of the families named above."],
        code="chat_template_unknown",
    )


def stop_tokens(tokenizer: PreTrainedTokenizerBase) -> list[str]:
    """End-of-turn tokens the model really has: its eos token and the family's turn markers."""
    vocab = tokenizer.get_vocab()
    found = [tokenizer.eos_token] if tokenizer.eos_token else []
    found += [token for token in _STOP_CANDIDATES if token in vocab]
    return list(dict.fromkeys(found))


def model_name_for(run_id: str) -> str:
    """A name Ollama accepts: lower case letters, digits, dashes, dots and underscores."""
    return "studio-" + (re.sub(r"[^a-z0-9._-]+", "-", run_id.lower()).strip("-.") or "model")


def render_modelfile(
    gguf_name: str, tokenizer: PreTrainedTokenizerBase, system_prompt: str, adapter_name: str | None = None
) -> str:
    """The Modelfile for the GGUF `gguf_name` beside it; with `adapter_name`, that GGUF is the base model
    and Ollama applies the adapter GGUF on top (an ADAPTER line), keeping one copy of the base for many runs."""
    family = chat_family(getattr(tokenizer, "chat_template", None))
    lines = [f"FROM ./{gguf_name}"] + ([f"ADAPTER ./{adapter_name}"] if adapter_name else [])
    lines += ["", f'TEMPLATE """{_TEMPLATES[family]}"""', ""]
    if system_prompt:
        lines += [f"SYSTEM {modelfile_quote(system_prompt, triple=True)}", ""]
    lines += [f"PARAMETER stop {modelfile_quote(token)}" for token in stop_tokens(tokenizer)]
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
