"""Bad input and interrupted exports: a clear error every time, and never a half-written export."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest

from studio.engine.errors import ExitCode, StudioError
from studio.engine.export.atomic import staged_output
from studio.engine.export.converter_setup import main as converter_setup_main
from studio.engine.export.converter_setup import require_converter, supported_architectures
from studio.engine.export.gguf import BASE_GGUF_CACHE, check_architecture
from studio.engine.export.pipeline import export_run
from studio.engine.export.quantize import normalize_quant
from studio.engine.export.run_info import find_run
from studio.engine.paths import cache_dir
from studio.engine.progress import Callbacks


def leftovers(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*")) if folder.exists() else []


def test_unknown_run_is_a_clear_error(tmp_path):
    with pytest.raises(StudioError) as caught:
        find_run("20990101-000000-nothing-here")
    assert caught.value.code == "run_not_found"
    assert any("studio runs" in action for action in caught.value.actions)


def test_a_run_is_found_by_registry_id_or_by_folder(tiny_model_dir, tiny_adapters, run_factory):
    from studio.engine.config import TrainConfig
    from studio.engine.paths import runs_dir
    from studio.engine.runs.registry import Registry

    run_dir = run_factory(runs_dir(), str(tiny_model_dir), tiny_adapters[0], run_id="20261123-1200-by-id")
    Registry().create_run("20261123-1200-by-id", "by-id", TrainConfig.load(run_dir / "config.json"), run_dir)
    assert find_run("20261123-1200-by-id") == run_dir
    assert find_run(str(run_dir)) == run_dir.resolve()


@pytest.mark.parametrize("fmt", ["hf", "ollama-adapter"])
def test_missing_adapter_weights_are_reported_and_nothing_is_written(tiny_run, fmt):
    (tiny_run / "final" / "adapter" / "adapter_model.safetensors").unlink()
    with pytest.raises(StudioError) as caught:
        export_run(tiny_run, fmt)
    assert caught.value.code == "adapter_missing"
    assert "adapter_model.safetensors" in caught.value.why
    assert not (tiny_run / "exports").exists()
    assert not (cache_dir() / BASE_GGUF_CACHE).exists()  # not even the base model's GGUF was started


def test_a_tampered_final_adapter_is_refused_and_one_from_before_manifests_still_exports(tiny_run):
    from studio.engine.training.checkpoints import write_manifest

    adapter = tiny_run / "final" / "adapter"
    assert not (adapter / "manifest.json").exists()  # saved before Studio wrote manifests
    assert (export_run(tiny_run, "adapter").out_dir / "adapter_model.safetensors").is_file()
    write_manifest(adapter)
    weights = adapter / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-64])  # cut short
    with pytest.raises(StudioError) as caught:
        export_run(tiny_run, "hf")
    assert caught.value.code == "adapter_damaged" and "adapter_model.safetensors" in caught.value.why
    assert not (tiny_run / "exports" / "hf").exists() and not (tiny_run / "exports" / "hf.partial").exists()


def test_full_disk_leaves_no_half_written_export(tiny_run, monkeypatch):
    from transformers import PreTrainedModel

    def fill_the_disk(self, folder, **kwargs):
        Path(folder, "model.safetensors").write_bytes(b"\0" * 1024)  # half a file, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PreTrainedModel, "save_pretrained", fill_the_disk)
    target = tiny_run / "exports" / "hf"
    with pytest.raises(StudioError) as caught:
        export_run(tiny_run, "hf")
    assert caught.value.code == "disk_full"
    assert "disk" in caught.value.what.lower()
    assert not target.exists() and not Path(str(target) + ".partial").exists()


def test_a_failed_export_keeps_the_previous_complete_one(tmp_path):
    final = tmp_path / "exports" / "hf"
    with staged_output(final) as staging:
        (staging / "model.bin").write_text("v1")
    with pytest.raises(RuntimeError), staged_output(final) as staging:
        (staging / "model.bin").write_text("v2, half")
        raise RuntimeError("crash")
    assert (final / "model.bin").read_text() == "v1"
    assert [p.name for p in final.parent.iterdir()] == ["hf"]


def test_unsupported_architecture_lists_what_is_supported(tmp_path, tiny_run):
    strange = tmp_path / "strange-model"
    strange.mkdir()
    (strange / "config.json").write_text(json.dumps({"architectures": ["FooBarForCausalLM"]}))
    with pytest.raises(StudioError) as caught:
        check_architecture(strange)
    assert caught.value.code == "architecture_unsupported"
    assert "FooBarForCausalLM" in caught.value.what
    assert "LlamaForCausalLM" in caught.value.why and "Qwen2ForCausalLM" in caught.value.why

    config = json.loads((tiny_run / "config.json").read_text())
    config["base_model"] = str(strange)
    (tiny_run / "config.json").write_text(json.dumps(config))
    for fmt in ("gguf", "gguf-adapter"):
        with pytest.raises(StudioError) as caught:
            export_run(tiny_run, fmt)
        assert caught.value.code == "architecture_unsupported"
    assert not (tiny_run / "exports").exists()


def test_cancel_during_conversion_stops_it_and_leaves_nothing(tiny_run):
    messages: list[str] = []

    def progress(message: str, _fraction: float) -> None:
        messages.append(message)

    def should_cancel() -> bool:
        return any(m.startswith(("Converting", "Writing the GGUF")) for m in messages)

    with pytest.raises(StudioError) as caught:
        export_run(tiny_run, "gguf", quant="f16", task=Callbacks(progress, should_cancel))
    assert caught.value.code == "export_cancelled"
    assert caught.value.exit_code == ExitCode.STOPPED
    assert leftovers(tiny_run / "exports") == []


def test_progress_is_monotonic_and_reaches_the_end(tiny_run):
    fractions: list[float] = []
    export_run(tiny_run, "adapter", task=Callbacks(lambda _m, f: fractions.append(f)))
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_unknown_quantization_fails_fast():
    with pytest.raises(StudioError) as caught:
        normalize_quant("Q9_K_XL")
    assert caught.value.code == "quant_unknown" and "Q4_K_M" in caught.value.why
    assert normalize_quant("q5_k_m") == "Q5_K_M" and normalize_quant("F16") == "f16"


def test_missing_converter_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_LLAMA_CPP_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(StudioError) as caught:
        require_converter()
    assert caught.value.code == "converter_missing"
    assert any("studio.engine.export.converter_setup" in action for action in caught.value.actions)


def test_converter_setup_is_idempotent_and_knows_llama(capsys):
    assert converter_setup_main([]) == 0
    assert "already set up" in capsys.readouterr().out
    assert "LlamaForCausalLM" in supported_architectures()


def test_converter_setup_extracts_from_a_local_source_archive(tmp_path, monkeypatch):
    """The set-up path itself, offline: pack the installed converter like the sdist does, then install it."""
    import tarfile

    installed = require_converter()
    sdist = tmp_path / "llama_cpp_python-0.0.0.tar.gz"
    with tarfile.open(sdist, "w:gz") as archive:
        for name in ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "conversion", "gguf-py", "models",
                     "LICENSE"):
            archive.add(installed / name, arcname=f"llama_cpp_python-0.0.0/vendor/llama.cpp/{name}")
    monkeypatch.setenv("STUDIO_LLAMA_CPP_DIR", str(tmp_path / "converter"))
    assert converter_setup_main(["--sdist", str(sdist)]) == 0
    assert "LlamaForCausalLM" in supported_architectures(tmp_path / "converter")
    assert not (tmp_path / "converter.partial").exists()
    shutil.rmtree(tmp_path / "converter")


def test_a_tokenizer_llama_cpp_does_not_know_is_refused_in_plain_words(family_models, tmp_path):
    from studio.engine.export.gguf import convert_to_gguf

    model = tmp_path / "custom-tokenizer"
    shutil.copytree(family_models.path("llama3"), model)
    tokenizer = json.loads((model / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                                  "use_regex": False}  # splits nothing: a hash llama.cpp has never seen
    (model / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    out = tmp_path / "model.gguf"
    with pytest.raises(StudioError) as caught:
        convert_to_gguf(model, out)
    assert caught.value.code == "gguf_pretokenizer_unknown"
    assert "--format hf" in " ".join(caught.value.actions)
    assert not out.exists()
