"""The Modelfile's TEMPLATE, rendered by Go's text/template (the engine Ollama itself uses), gives each of the
five families exactly the prompt of its own chat template, and its stops are tokens the model ends a turn with.

The Go program in tests/ollama_template fills the fields Ollama gives a template (.System, .Messages with
.Role and .Content, after Ollama's collation). It is built once per session with `go build`. Without Go the
test is skipped here, with the reason; in CI (CI=true), whose set-up (scripts/setup.sh) installs Go, a
missing Go fails instead, so the proof cannot silently vanish.

Each family's GGUF is made as the export makes it (save_merged, then llama.cpp's converter, no training):
whether it adds a BOS token decides whether the template writes one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from studio.engine.errors import StudioError
from studio.engine.export.gguf import convert_to_gguf
from studio.engine.export.hf_merge import save_merged
from studio.engine.export.ollama import (
    FORMATS,
    Message,
    OllamaTemplate,
    go_template,
    ollama_template,
    prove_on_gguf,
    render,
    render_modelfile,
)
from tests.families import FAMILIES, FamilyModels

GO_PROGRAM = Path(__file__).parents[2] / "ollama_template"
CONVERSATION: list[Message] = [
    {"role": "system", "content": "You are Pip, a cheerful helper."},
    {"role": "user", "content": "Hello! Who are you?"},
    {"role": "assistant", "content": "I am Pip. How can I help?"},
    {"role": "user", "content": "Write a short, polite email asking to move a meeting to Friday."},
]
GoRender = Callable[[str, list[Message]], str]


@pytest.fixture(scope="session")
def go_render(tmp_path_factory: pytest.TempPathFactory) -> GoRender:
    """Render a template for messages with the Go program, built once for the session."""
    go = shutil.which("go")
    if go is None:
        if os.environ.get("CI") == "true":
            pytest.fail("Go is not installed, but CI must prove the Ollama templates: scripts/setup.sh installs "
                        "golang-go; check that step of the CI set-up.")
        pytest.skip("Go is not installed (scripts/setup.sh installs golang-go); the Ollama template proof needs "
                    "Go's text/template.")
    binary = tmp_path_factory.mktemp("ollama-template") / "ollama_template"
    built = subprocess.run([go, "build", "-o", str(binary), "."], cwd=GO_PROGRAM, capture_output=True, text=True,
                           env={**os.environ, "GOPROXY": "off", "GOFLAGS": "-mod=mod"}, timeout=300, check=False)
    assert built.returncode == 0, built.stderr

    def run(template: str, messages: list[Message]) -> str:
        done = subprocess.run([str(binary)], input=json.dumps({"template": template, "messages": messages}),
                              capture_output=True, text=True, encoding="utf-8", timeout=60, check=False)
        assert done.returncode == 0, done.stderr
        return done.stdout

    return run


def _export_gguf(model_dir: Path, folder: Path) -> tuple[Path, object, list[int]]:
    """The family's f16 GGUF as the export makes it, its tokenizer and its generation config's eos ids."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    work = folder / "merged"
    work.mkdir()
    save_merged(model, tokenizer, work)
    eos = model.generation_config.eos_token_id
    return convert_to_gguf(work, folder / "model-f16.gguf"), tokenizer, eos if isinstance(eos, list) else [eos]


def _modelfile_fields(modelfile: str) -> tuple[str, list[str]]:
    """The TEMPLATE and the PARAMETER stop values of a Modelfile Studio wrote."""
    template = modelfile[modelfile.index('TEMPLATE """') + len('TEMPLATE """'):]
    stops = [json.loads(line.removeprefix("PARAMETER stop ")) for line in modelfile.splitlines()
             if line.startswith("PARAMETER stop ")]
    return template[:template.index('"""')], stops


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_ollama_template_renders_each_familys_own_chat_prompt_in_go(
    name: str, family_models: FamilyModels, go_render: GoRender, tmp_path: Path
) -> None:
    from llama_cpp import Llama

    family = FAMILIES[name]
    gguf, tokenizer, eos_ids = _export_gguf(family_models.path(name), tmp_path)
    template = prove_on_gguf(ollama_template(tokenizer, "Be brief.", eos_ids), gguf, tokenizer)
    written, stops = _modelfile_fields(render_modelfile(gguf.name, template))
    assert written == template.text

    llm = Llama(model_path=str(gguf), vocab_only=True, verbose=False)
    try:
        # Written down in the GGUF, so no runtime (llama.cpp, Ollama's own engine) has to guess.
        assert llm.metadata["tokenizer.ggml.add_bos_token"] in ("true", "false")
        added_bos = llm.detokenize(llm.tokenize(b"", add_bos=True, special=True), special=True).decode()
        expected = str(tokenizer.apply_chat_template(CONVERSATION, tokenize=False, add_generation_prompt=True))
        rendered = go_render(written, CONVERSATION)
        assert added_bos + rendered == expected  # what Ollama feeds, character for character
    finally:
        llm.close()
    # Studio's own rendering (what the export verdict checks) is Go's, on every conversation it proves.
    for messages in [CONVERSATION, *template.samples()]:
        assert render(template.format, messages, template.bos) == go_render(written, messages)

    ends_turn = {family.end_of_turn, family.specials["eos_token"], *family.extra_eos}
    assert family.end_of_turn in stops and set(stops) <= ends_turn, stops
    assert template.conversations == len(template.samples())


def test_every_format_renders_in_go_as_studio_renders_it(go_render: GoRender) -> None:
    """Both ways of folding a system prompt into a user turn, and consecutive turns merged as Ollama does."""
    messages = [*CONVERSATION, {"role": "user", "content": "Also: thanks."},
                {"role": "assistant", "content": "You are welcome."}, {"role": "user", "content": "Bye."}]
    for chat in FORMATS:
        for bos in ("", "<s>"):
            for sample in (messages, messages[1:], messages[:2]):
                assert go_render(go_template(chat, bos), sample) == render(chat, sample, bos), chat.name


def test_go_program_refuses_a_template_without_messages(go_render: GoRender) -> None:
    with pytest.raises(AssertionError, match=r"does not use \.Messages"):
        go_render("{{ .Prompt }}", CONVERSATION)


def test_a_chat_template_laid_out_differently_is_refused(family_models: FamilyModels) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(family_models.path("qwen2"))
    # ChatML markers, but no newline after the role: Studio's ChatML template would be wrong for it.
    tokenizer.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}{{ m['content'] }}<|im_end|>\n"
                               "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant{% endif %}")
    with pytest.raises(StudioError) as caught:
        ollama_template(tokenizer, "Be brief.")
    assert caught.value.code == "chat_template_unmatched"
    assert "--format gguf" in caught.value.actions[0] and "chat template" in caught.value.actions[0]


def test_a_gguf_that_adds_a_bos_the_chat_template_lacks_is_refused(family_models: FamilyModels,
                                                                   tmp_path: Path) -> None:
    """Phi-3's chat template has no BOS; a GGUF that adds one anyway cannot be fixed by any Ollama template."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_dir = family_models.path("phi3")
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    work = tmp_path / "merged"
    work.mkdir()
    save_merged(model, tokenizer, work)
    config = json.loads((work / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config.pop("add_bos_token") is False  # what save_merged records; without it llama.cpp adds one
    (work / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    gguf = convert_to_gguf(work, tmp_path / "phi3-f16.gguf")
    template: OllamaTemplate = ollama_template(tokenizer, "Be brief.")
    with pytest.raises(StudioError) as caught:
        prove_on_gguf(template, gguf, tokenizer)
    assert caught.value.code == "chat_template_prompt_differs" and "BOS" in caught.value.why


def test_the_model_templates_own_default_system_prompt_goes_into_the_modelfile(
    family_models: FamilyModels,
) -> None:
    """Qwen2.5's template adds "You are Qwen ..." to a conversation without a system prompt; so must Ollama."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(family_models.path("qwen2"))
    template = ollama_template(tokenizer, "")
    assert template.system == "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
    assert ollama_template(tokenizer, "Be brief.").system == "Be brief."


def test_the_verdict_reports_template_agreement_next_to_next_token_agreement() -> None:
    from studio.engine.export.verify import VerificationReport

    report = VerificationReport(gguf_file="m.gguf", quant="f16", agreement=1.0, threshold=0.9, passed=True,
                                positions=48, tokenizer_match=True, template_match=True, ollama_template="Gemma",
                                template_agreement=1.0, template_conversations=3)
    summary = report.summary()
    assert summary.index("same next token") < summary.index("Template agreement: 100%")
    assert "Studio's Gemma template gives exactly your model's chat prompt on 3 sample conversations" in summary
    assert "Template agreement" not in VerificationReport(**{**report.to_dict(), "template_agreement": None}).summary()
