"""The real built-in SmolLM2 with a LoRA adapter, exported, then loaded and run by the runtimes people use."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from studio.engine.export.pipeline import export_run
from studio.engine.profiles import get_profile

pytestmark = pytest.mark.slow


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def parse_modelfile(text: str) -> dict[str, list[str]]:
    """Ollama's Modelfile: `KEYWORD value` lines; a value in triple quotes may span lines."""
    found: dict[str, list[str]] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if not line.strip():
            continue
        keyword, _, value = line.partition(" ")
        if value.startswith('"""'):
            value = value[3:]
            while not value.endswith('"""'):
                value += "\n" + next(lines)
            value = value[:-3]
        found.setdefault(keyword.upper(), []).append(value)
    return found


def chat(gguf: Path, prompt: str) -> str:
    from llama_cpp import Llama

    llm = Llama(model_path=str(gguf), n_ctx=256, verbose=False)
    try:
        reply = llm.create_chat_completion(messages=[{"role": "user", "content": prompt}], max_tokens=16,
                                           temperature=0.0)
    finally:
        llm.close()
    return str(reply["choices"][0]["message"]["content"])


def test_merged_hf_export_reloads_and_differs_from_base(builtin_run, builtin_model_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    result = export_run(builtin_run, "hf", out_dir=tmp_path / "hf")
    names = {path.name for path in result.files}
    assert {"model.safetensors", "tokenizer.json", "generation_config.json", "README.md"} <= names
    card = (tmp_path / "hf" / "README.md").read_text()
    for fact in ("base_model: builtin:smollm2-135m-instruct", "Method: lora", "Training examples: 180",
                 "Best eval loss: 1.7300", "| learning_rate |", "## Limitations", "Chatbot"):
        assert fact in card
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    base = AutoModelForCausalLM.from_pretrained(builtin_model_dir)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "hf")
    ids = tokenizer("The capital of France is", return_tensors="pt").input_ids
    with torch.inference_mode():
        assert not torch.allclose(merged(ids).logits, base(ids).logits, atol=1e-4)
        out = merged.generate(ids, max_new_tokens=5, do_sample=False)
    assert tokenizer.decode(out[0, ids.shape[1]:]).strip()
    assert not (tmp_path / "hf.partial").exists()


def test_ollama_export_f16_is_verified_loadable_and_has_a_matching_modelfile(builtin_run, tmp_path):
    result = export_run(builtin_run, "ollama", quant="f16", out_dir=tmp_path / "ollama")
    report = read_json(tmp_path / "ollama" / "verification.json")
    assert result.ok and report["passed"] is True
    assert report["agreement"] >= 0.9 and report["tokenizer_match"] and report["template_match"]
    assert report["positions"] >= 60
    gguf = next((tmp_path / "ollama").glob("*-f16.gguf"))
    assert chat(gguf, "What is the capital of France?").strip()

    modelfile = parse_modelfile((tmp_path / "ollama" / "Modelfile").read_text())
    (source,) = modelfile["FROM"]
    assert (tmp_path / "ollama" / source).resolve() == gguf.resolve()
    (template,) = modelfile["TEMPLATE"]
    assert "<|im_start|>user\n{{ .Content }}<|im_end|>" in template
    assert report["ollama_template"] == "ChatML" and report["template_agreement"] == 1.0
    assert template.rstrip().endswith("<|im_start|>assistant")
    assert modelfile["SYSTEM"] == [get_profile("chatbot").system_prompt]
    assert 'stop "<|im_end|>"' in modelfile["PARAMETER"]
    if shutil.which("ollama") is None:
        assert result.ollama is not None and not result.ollama.created
        assert "ollama create studio-" in result.ollama.command
        assert any("ollama create" in note for note in result.notes)


def test_q4_k_m_export_loads_but_verification_flags_it(builtin_run, tmp_path):
    result = export_run(builtin_run, "gguf", quant="q4_k_m", out_dir=tmp_path / "q4")
    gguf = next((tmp_path / "q4").glob("*-Q4_K_M.gguf"))
    assert chat(gguf, "What is the capital of France?").strip()
    report = result.verification
    assert report is not None and not report.passed and not result.ok
    assert report.agreement < 0.9
    assert "f16" in report.recommendation
    assert read_json(tmp_path / "q4" / "verification.json")["passed"] is False
    assert not list((tmp_path / "q4").glob("*-f16.gguf"))
