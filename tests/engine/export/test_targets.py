"""Ollama templates, LM Studio layout, Hub upload offline, and adapter merging."""

from __future__ import annotations

import json

import pytest

from studio.engine.errors import StudioError
from studio.engine.export.hub_upload import upload_folder
from studio.engine.export.merge_adapters import merge_adapters
from studio.engine.export.ollama import chat_format, model_name_for, ollama_template, render_modelfile
from studio.engine.export.pipeline import export_run
from studio.engine.models.hub_auth import load_token


@pytest.mark.parametrize(
    ("marker", "name"),
    [("<|im_start|>", "ChatML"), ("<|start_header_id|>", "Llama 3"), ("[INST]", "Mistral"),
     ("<start_of_turn>", "Gemma"), ("<|assistant|>", "Phi-3")],
)
def test_chat_formats_are_recognised(marker, name):
    assert chat_format("{% for m in messages %}" + marker + "{{ m['content'] }}{% endfor %}").name == name


def test_unknown_chat_template_is_a_clear_error():
    with pytest.raises(StudioError) as caught:
        chat_format("{{ messages[0]['content'] }} ### Response:")
    assert caught.value.code == "chat_template_unknown"
    assert "ChatML" in caught.value.why and "--format gguf" in caught.value.actions[0]


def test_modelfile_uses_the_tokenizers_own_stop_tokens(tiny_model_dir):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    template = ollama_template(tokenizer, "Be brief.")
    assert template.stops == (tokenizer.eos_token,) == ("<|im_end|>",)  # ChatML's end of turn, and SmolLM2's eos
    text = render_modelfile("m-f16.gguf", template)
    assert text.startswith("FROM ./m-f16.gguf\n") and 'SYSTEM """Be brief."""' in text
    assert 'PARAMETER stop "<|im_end|>"' in text and "<|eot_id|>" not in text
    assert model_name_for("20261123-Chat Bot!") == "studio-20261123-chat-bot"


def test_adapter_modelfile_puts_the_adapter_on_the_base_with_the_same_template(tiny_model_dir):
    from transformers import AutoTokenizer

    template = ollama_template(AutoTokenizer.from_pretrained(tiny_model_dir), "Be brief.")
    merged = render_modelfile("base-f16.gguf", template)
    text = render_modelfile("base-f16.gguf", template, adapter_name="run-adapter-f16.gguf")
    assert text.startswith("FROM ./base-f16.gguf\nADAPTER ./run-adapter-f16.gguf\n")
    assert text.replace("ADAPTER ./run-adapter-f16.gguf\n", "") == merged


def test_lmstudio_export_uses_its_publisher_model_layout(tiny_run, tmp_path):
    models = tmp_path / "lm-studio-models"
    result = export_run(tiny_run, "lmstudio", quant="f16", out_dir=models)
    ggufs = list(models.glob("studio/*/*.gguf"))
    assert [p.parent for p in ggufs] == [models / "studio" / "tiny-run-GGUF"]
    assert result.out_dir == models / "studio" / "tiny-run-GGUF"
    assert (result.out_dir / "verification.json").is_file()


def test_hub_upload_offline_says_so_and_keeps_the_export(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(StudioError) as caught:
        upload_folder(tmp_path, "someone/model")
    assert caught.value.code == "hub_offline"


def test_keyring_without_a_backend_is_a_clear_error():
    import keyring
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        with pytest.raises(StudioError) as caught:
            load_token()
    finally:
        keyring.set_keyring(previous)
    assert caught.value.code == "keyring_unavailable"


@pytest.mark.parametrize("method", ["ties", "dare", "linear"])
def test_merging_adapters_makes_a_new_loadable_adapter(tiny_model_dir, tiny_adapters, tmp_path, method):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    out = merge_adapters(tiny_model_dir, tiny_adapters, tmp_path / "merged", method, weights=[0.6, 0.4])
    assert json.loads((out / "studio-merge.json").read_text())["method"] == method
    merged = load_file(out / "adapter_model.safetensors")
    first = load_file(tiny_adapters[0] / "adapter_model.safetensors")
    key = next(k for k in merged if "lora_B" in k)
    assert merged[key].shape[0] == first[key].shape[0] and not torch.allclose(merged[key], first[key])
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), out)
    assert model.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=2, do_sample=False).shape[1] == 5
    assert not (tmp_path / "merged.partial").exists()


def test_a_merged_run_has_a_sealed_final_adapter(tiny_model_dir, tiny_adapters, run_factory, tmp_path):
    from studio.engine.export.merge_runs import merge_runs
    from studio.engine.runs.folders import final_adapter_dir
    from studio.engine.training.checkpoints import MANIFEST, check_manifest

    sources = [run_factory(tmp_path, str(tiny_model_dir), adapter, run_id=f"source-{index}")
               for index, adapter in enumerate(tiny_adapters)]
    record = merge_runs(sources, "linear")
    adapter = final_adapter_dir(record.run_dir)
    assert record.status == "completed" and (adapter / MANIFEST).is_file() and check_manifest(adapter) is None
    assert "adapter_model.safetensors" in json.loads((adapter / MANIFEST).read_text())["files"]


def test_merging_needs_two_adapters(tiny_model_dir, tiny_adapters, tmp_path):
    with pytest.raises(StudioError) as caught:
        merge_adapters(tiny_model_dir, tiny_adapters[:1], tmp_path / "merged")
    assert caught.value.code == "merge_invalid"
    assert not (tmp_path / "merged").exists()


def _read_modelfile_value(text: str) -> str:
    """Read one quoted Modelfile value back: triple or single quotes, a backslash escapes the next character."""
    quote = '"""' if text.startswith('"""') else '"'
    assert text.startswith(quote) and text.endswith(quote), text
    body, out, escaped = text[len(quote):-len(quote)], [], False
    for char in body:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            assert char != '"', f"unescaped quote in {text!r}"
            out.append(char)
    return "".join(out)


@pytest.mark.parametrize("value", ['Say """hi""" then stop', "C:\\path\\n is not a newline", "two\nlines", 'a "q"'])
def test_modelfile_values_read_back_unchanged(value, tiny_model_dir):
    import dataclasses

    from transformers import AutoTokenizer

    from studio.engine.export import ollama

    template = ollama_template(AutoTokenizer.from_pretrained(tiny_model_dir), "Be brief.")
    text = render_modelfile("m-f16.gguf", dataclasses.replace(template, system=value, stops=(value,)))
    system = text[text.index("SYSTEM ") + len("SYSTEM "):text.index("\n\nPARAMETER")]
    stop = text[text.index("PARAMETER stop ") + len("PARAMETER stop "):].rstrip("\n")
    assert _read_modelfile_value(system) == value and _read_modelfile_value(stop) == value
    assert ollama.modelfile_quote('a"""b\\') == '"a\\"\\"\\"b\\\\"'


def test_ollama_command_to_copy_is_shell_quoted(tmp_path, monkeypatch):
    import shlex

    from studio.engine.export import ollama

    monkeypatch.setattr(ollama.shutil, "which", lambda name: None)  # no Ollama here: the command is shown
    folder = tmp_path / "it's here; rm -rf ~"
    folder.mkdir()
    result = ollama.create_in_ollama(folder, "studio-x", "hi")
    assert shlex.split(result.command) == ["cd", str(folder), "&&", "ollama", "create", "studio-x", "-f", "Modelfile"]
    odd = ollama.OllamaResult(folder / "Modelfile", "x; rm -rf ~", result.command, created=True)
    assert shlex.split(odd.run_command) == ["ollama", "run", "x; rm -rf ~"]  # the hint shown after creating
