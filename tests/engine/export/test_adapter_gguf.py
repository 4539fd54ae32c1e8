"""The adapter as a GGUF file (llama.cpp --lora, Ollama's ADAPTER line): made, loaded on the base model's
GGUF, verified, and never left half-written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.engine.errors import StudioError
from studio.engine.export.gguf import BASE_GGUF_CACHE, base_gguf, require_base_gguf
from studio.engine.export.ollama import model_name_for
from studio.engine.export.pipeline import export_run
from studio.engine.paths import cache_dir
from studio.engine.progress import Callbacks, Span
from tests.engine.export.test_real_model import parse_modelfile


def cached_files() -> list[Path]:
    """Everything in the base-GGUF cache, hidden temporary files included."""
    root = cache_dir() / BASE_GGUF_CACHE
    return sorted(path for path in root.rglob("*") if path.is_file()) if root.exists() else []


@pytest.mark.slow
def test_ollama_adapter_export_loads_on_the_base_gguf_and_agrees_with_the_model(builtin_run, tmp_path):
    from llama_cpp import Llama

    out = tmp_path / "ollama-adapter"
    result = export_run(builtin_run, "ollama-adapter", out_dir=out)
    report = json.loads((out / "verification.json").read_text())
    assert result.ok and report["passed"] is True
    assert report["agreement"] >= 0.9 and report["positions"] >= 60
    assert report["tokenizer_match"] and report["template_match"]
    assert report["adapter_effect"] > 0.01  # llama.cpp really applied it: scores moved
    adapter = out / report["adapter_file"]
    assert adapter.name.endswith("-adapter-f16.gguf") and adapter.stat().st_size < 10_000_000
    assert result.base_gguf is not None and (out / result.base_gguf.name).samefile(result.base_gguf)

    modelfile = parse_modelfile((out / "Modelfile").read_text())
    (source,) = modelfile["FROM"]
    (applied,) = modelfile["ADAPTER"]
    assert (out / source).resolve() == (out / result.base_gguf.name).resolve()
    assert (out / applied).resolve() == adapter.resolve()
    assert 'stop "<|im_end|>"' in modelfile["PARAMETER"] and modelfile["SYSTEM"]

    llm = Llama(model_path=str(out / source), lora_path=str(adapter), n_ctx=256, verbose=False)
    try:
        reply = llm.create_chat_completion(messages=[{"role": "user", "content": "What is the capital of France?"}],
                                           max_tokens=16, temperature=0.0)
    finally:
        llm.close()
    assert str(reply["choices"][0]["message"]["content"]).strip()
    assert "--lora" in (out / "README.md").read_text()
    assert not (tmp_path / "ollama-adapter.partial").exists()
    # A name of its own, so the merged export's model in Ollama is kept beside this one.
    assert result.ollama is not None and result.ollama.model_name == model_name_for(builtin_run.name) + "-adapter"


def test_cancel_during_adapter_conversion_leaves_nothing_that_looks_complete(tiny_run, tiny_model_dir):
    messages: list[str] = []

    def should_cancel() -> bool:
        return any(m.startswith("Converting to GGUF adapter") for m in messages)

    with pytest.raises(StudioError) as caught:
        export_run(tiny_run, "gguf-adapter", task=Callbacks(lambda m, _f: messages.append(m), should_cancel))
    assert caught.value.code == "export_cancelled"
    assert not (tiny_run / "exports").exists() or not list((tiny_run / "exports").rglob("*"))
    assert not list(tiny_run.rglob("*.gguf"))
    (base,) = cached_files()  # the base GGUF was complete before the cancel; no temporary file is left
    assert base.name == "tiny-llama-test-f16.gguf"

    made, messages[:] = base.stat().st_mtime_ns, []
    assert base_gguf(tiny_model_dir, Span(Callbacks(lambda message, _fraction: messages.append(message)))) == base
    assert base.stat().st_mtime_ns == made and messages == ["Using the base model's GGUF made earlier"]


def test_dora_adapters_and_quantizations_are_refused_before_any_work(tiny_run):
    with pytest.raises(StudioError) as caught:
        export_run(tiny_run, "gguf-adapter", quant="Q4_K_M")
    assert caught.value.code == "adapter_quant_unsupported"
    assert any("--format gguf --quant Q4_K_M" in action for action in caught.value.actions)

    config_file = tiny_run / "final" / "adapter" / "adapter_config.json"
    config = json.loads(config_file.read_text())
    config_file.write_text(json.dumps({**config, "use_dora": True}))
    with pytest.raises(StudioError) as caught:
        export_run(tiny_run, "gguf-adapter")
    assert caught.value.code == "adapter_not_convertible" and "DoRA" in caught.value.what
    assert not (tiny_run / "exports").exists() and cached_files() == []


def test_a_converter_without_the_adapter_script_counts_as_missing(tmp_path, monkeypatch, tiny_run):
    from studio.engine.export.converter_setup import CONVERTER_SCRIPT, MARKER, require_converter

    partial = tmp_path / "old-converter"
    partial.mkdir()
    (partial / CONVERTER_SCRIPT).write_text("")
    (partial / MARKER).write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    monkeypatch.setenv("STUDIO_LLAMA_CPP_DIR", str(partial))
    with pytest.raises(StudioError) as caught:
        export_run(tiny_run, "gguf-adapter")
    assert caught.value.code == "converter_missing"
    assert any("converter_setup" in action for action in caught.value.actions)
    assert not (tiny_run / "exports").exists()
    monkeypatch.delenv("STUDIO_LLAMA_CPP_DIR")
    require_converter()  # the real one, set up by Studio's set-up, has both scripts


def test_a_missing_base_gguf_says_how_to_get_it_back(tmp_path):
    with pytest.raises(StudioError) as caught:
        require_base_gguf(tmp_path / "gone-f16.gguf")
    assert caught.value.code == "base_gguf_missing"
    assert "base model's GGUF" in caught.value.what and "Export again" in caught.value.actions[0]
