"""Export one run in one format: the entry point the CLI and the export dialog both call.

Every format is built in a staging folder and renamed into place only when complete (and, for GGUF,
verified), so what a person finds under exports/ is always whole.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from studio.engine.errors import StudioError
from studio.engine.export.adapter import export_adapter
from studio.engine.export.atomic import staged_output
from studio.engine.export.gguf import (
    base_gguf,
    check_adapter_convertible,
    check_architecture,
    convert_adapter_to_gguf,
    convert_to_gguf,
    require_base_gguf,
)
from studio.engine.export.hf_merge import export_merged, load_merged, save_merged
from studio.engine.export.lmstudio import lmstudio_models_dir, lmstudio_target
from studio.engine.export.model_card import render_model_card
from studio.engine.export.ollama import (
    MODELFILE,
    OllamaResult,
    create_in_ollama,
    model_name_for,
    ollama_template,
    prove_on_gguf,
    render_modelfile,
)
from studio.engine.export.progress import export_steps
from studio.engine.export.quantize import CONVERTER_QUANTS, normalize_quant, quantize_gguf
from studio.engine.export.run_info import RunInfo, load_run_info
from studio.engine.export.verify import VerificationReport, verify_gguf
from studio.engine.models.resolve import resolve_model
from studio.engine.profiles import Profile, get_profile
from studio.engine.progress import QUIET, Span, TaskContext

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

ExportFormat = Literal["hf", "adapter", "gguf", "ollama", "lmstudio", "gguf-adapter", "ollama-adapter"]
FORMATS: tuple[str, ...] = get_args(ExportFormat)
_GGUF_FORMATS = ("gguf", "ollama", "lmstudio")
# The adapter as a GGUF applied on top of the base model's f16 GGUF (llama.cpp --lora, Ollama's ADAPTER).
ADAPTER_GGUF_FORMATS = ("gguf-adapter", "ollama-adapter")
_OLLAMA_FORMATS = ("ollama", "ollama-adapter")
_SMALL_MODEL_PARAMS = 1_000_000_000


@dataclass
class ExportResult:
    format: str
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    verification: VerificationReport | None = None
    ollama: OllamaResult | None = None
    notes: list[str] = field(default_factory=list)
    base_gguf: Path | None = None  # adapter GGUF formats: the base model's GGUF the adapter is applied to

    @property
    def ok(self) -> bool:
        """False when a GGUF was made but failed verification: the export exists, but is not trustworthy."""
        return self.verification is None or self.verification.passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format, "ok": self.ok, "out_dir": str(self.out_dir),
            "files": [str(path) for path in self.files],
            "verification": self.verification.to_dict() if self.verification else None,
            "ollama": None if self.ollama is None else {
                "model_name": self.ollama.model_name, "created": self.ollama.created,
                "command": self.ollama.command, "smoke_answer": self.ollama.smoke_answer,
            },
            "notes": self.notes,
            "base_gguf": str(self.base_gguf) if self.base_gguf else None,
        }


def default_out_dir(run_dir: Path, fmt: str) -> Path:
    return run_dir / "exports" / fmt


def default_quant(parameters: int) -> str:
    """f16 for small models, which fall apart under 4-bit quantization; Q4_K_M for the rest."""
    return "f16" if parameters < _SMALL_MODEL_PARAMS else "Q4_K_M"


def export_run(
    run_dir: Path,
    fmt: ExportFormat,
    *,
    quant: str | None = None,
    out_dir: Path | None = None,
    task: TaskContext = QUIET,
) -> ExportResult:
    """Export the run in `run_dir` as `fmt`. For lmstudio, `out_dir` is the models folder to install into.

    gguf-adapter and ollama-adapter keep the adapter separate: an f16 GGUF adapter, verified on top of the
    base model's f16 GGUF (made once and kept in Studio's cache); ollama-adapter adds the base GGUF and a
    Modelfile with FROM and ADAPTER lines.
    """
    if fmt not in FORMATS:
        raise StudioError(
            what=f"'{fmt}' is not an export format.",
            why=f"The formats are: {', '.join(FORMATS)}.",
            actions=["Pick one of the formats listed above."],
            code="export_format_unknown",
        )
    steps = export_steps(task)
    steps.report("Reading the run", 0.0)
    info = load_run_info(run_dir)
    if fmt == "adapter":
        target = out_dir or default_out_dir(run_dir, fmt)
        card = render_model_card(info, "LoRA adapter")
        export_adapter(info.adapter_dir, target, card, steps.sub(0.02, 1.0))
        return ExportResult(fmt, target, _listing(target))
    base_path = resolve_model(info.base_model)
    if fmt == "hf":
        target = out_dir or default_out_dir(run_dir, fmt)
        export_merged(base_path, info.adapter_dir, target, render_model_card(info, "merged model"),
                      steps.sub(0.02, 1.0))
        return ExportResult(fmt, target, _listing(target))
    normalize_quant(quant)  # a typo fails before minutes of work
    remote_code = bool(info.config and info.config.trust_remote_code)  # the run's explicit allowance
    check_architecture(base_path, remote_code)
    as_adapter = fmt in ADAPTER_GGUF_FORMATS
    if as_adapter:
        _check_adapter_quant(quant)
        check_adapter_convertible(info.adapter_dir)
    model, tokenizer = load_merged(base_path, info.adapter_dir, steps.sub(0.02, 0.15))
    chosen = "f16" if as_adapter else normalize_quant(quant or default_quant(model.num_parameters()))
    profile = _profile_or_default(info)
    # Before minutes of conversion: a chat format Studio cannot template for Ollama is refused now.
    template = ollama_template(tokenizer, profile.system_prompt, _eos_ids(model)) if fmt in _OLLAMA_FORMATS else None
    if fmt == "lmstudio":
        root = out_dir or lmstudio_models_dir() or default_out_dir(run_dir, fmt)
        target = lmstudio_target(root, f"{info.run_id}-GGUF")
    else:
        target = out_dir or default_out_dir(run_dir, fmt)
    base_file = base_gguf(base_path, steps.sub(0.15, 0.35), allow_remote_code=remote_code) if as_adapter else None
    with staged_output(target) as staging:
        if base_file is None:
            gguf_file, report = _build_gguf(model, tokenizer, staging, info.run_id, chosen, profile,
                                            steps.sub(0.15, 0.97), allow_remote_code=remote_code)
            kind = f"GGUF model ({chosen})"
            usage = f"Load `{gguf_file.name}` in any GGUF runtime (llama.cpp, Ollama, LM Studio)."
        else:
            gguf_file, report = _build_adapter_gguf(base_file, base_path, info.adapter_dir, model, tokenizer,
                                                    staging, info.run_id, profile, steps.sub(0.35, 0.97),
                                                    allow_remote_code=remote_code)
            kind = "GGUF LoRA adapter (f16)"
            usage = (f"Apply `{gguf_file.name}` to an f16 GGUF of `{info.base_model}`, the model it was "
                     f"trained on: `llama-cli -m BASE-f16.gguf --lora {gguf_file.name}`, or in Ollama a "
                     f"Modelfile with `FROM BASE-f16.gguf` and `ADAPTER ./{gguf_file.name}`.")
        if template is not None:  # proven on the GGUF that Ollama loads: the model's, or the adapter's base
            template = prove_on_gguf(template, gguf_file if base_file is None else require_base_gguf(base_file),
                                     tokenizer)
            report.ollama_template, report.template_agreement = template.format.name, template.agreement
            report.template_conversations = template.conversations
        report.write(staging)
        (staging / "README.md").write_text(render_model_card(info, kind, usage), encoding="utf-8")
        if fmt == "ollama" and template is not None:
            (staging / MODELFILE).write_text(render_modelfile(gguf_file.name, template), encoding="utf-8")
        elif fmt == "ollama-adapter" and base_file is not None and template is not None:
            base_copy = _link_or_copy(require_base_gguf(base_file), staging / base_file.name)
            modelfile = render_modelfile(base_copy.name, template, gguf_file.name)
            (staging / MODELFILE).write_text(modelfile, encoding="utf-8")
    result = ExportResult(fmt, target, _listing(target), verification=report, base_gguf=base_file)
    if not report.passed:
        result.notes.append(report.summary())
    if fmt == "gguf-adapter" and base_file is not None:
        adapter = target / gguf_file.name
        result.notes.append(f"The adapter runs on top of the base model's GGUF, kept at {base_file}. "
                            f'Try it: llama-cli -m "{base_file}" --lora "{adapter}"')
    if fmt in _OLLAMA_FORMATS:
        _register_with_ollama(result, info, profile)
    steps.report("Export complete" if result.ok else "Export finished, but verification failed", 1.0)
    return result


def export_gguf(
    base_model_path: Path,
    adapter_path: Path,
    out_dir: Path,
    quant: str = "f16",
    *,
    name: str = "model",
    profile_id: str | None = None,
    task: TaskContext = QUIET,
) -> tuple[Path, VerificationReport]:
    """Lower-level GGUF export from explicit paths (no run folder): the verified file and its report."""
    steps = export_steps(task)
    chosen = normalize_quant(quant)
    check_architecture(base_model_path)
    model, tokenizer = load_merged(base_model_path, adapter_path, steps.sub(0.0, 0.15))
    with staged_output(out_dir) as staging:
        gguf_file, report = _build_gguf(model, tokenizer, staging, name, chosen, get_profile(profile_id),
                                        steps.sub(0.15, 1.0))
        report.write(staging)
    return out_dir / gguf_file.name, report


def _build_gguf(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    staging: Path,
    name: str,
    quant: str,
    profile: Profile,
    steps: Span,
    *,
    allow_remote_code: bool = False,
) -> tuple[Path, VerificationReport]:
    """Merged model -> f16/q8_0 GGUF (-> k-quant) in `staging`, then verified against the merged model."""
    work = staging / ".merged-hf"
    work.mkdir()
    steps.report("Saving the merged model for conversion", 0.0)
    save_merged(model, tokenizer, work)
    first = "q8_0" if quant == "q8_0" else "f16"
    converted = convert_to_gguf(work, staging / f"{name}-{first}.gguf", first, steps.sub(0.1, 0.45),
                                allow_remote_code=allow_remote_code)
    shutil.rmtree(work)
    final = converted
    if quant not in CONVERTER_QUANTS:
        final = quantize_gguf(converted, staging / f"{name}-{quant}.gguf", quant, steps.sub(0.45, 0.55))
        converted.unlink()
    report = verify_gguf(final, model, tokenizer, quant, profile.example_prompts, profile.system_prompt,
                         steps.sub(0.55, 1.0))
    return final, report


def _build_adapter_gguf(
    base_file: Path,
    base_path: Path,
    adapter_dir: Path,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    staging: Path,
    name: str,
    profile: Profile,
    steps: Span,
    *,
    allow_remote_code: bool = False,
) -> tuple[Path, VerificationReport]:
    """PEFT adapter -> f16 GGUF adapter in `staging`, verified on the base GGUF against the merged model."""
    adapter_file = convert_adapter_to_gguf(adapter_dir, base_path, staging / f"{name}-adapter-f16.gguf",
                                           steps.sub(0.0, 0.2), allow_remote_code=allow_remote_code)
    report = verify_gguf(require_base_gguf(base_file), model, tokenizer, "f16", profile.example_prompts,
                         profile.system_prompt, steps.sub(0.2, 1.0), lora_path=adapter_file)
    return adapter_file, report


def _check_adapter_quant(quant: str | None) -> None:
    """Adapter GGUFs are f16 on an f16 base: the exact pair. Any other type asked for is a clear error."""
    if quant is not None and normalize_quant(quant) != "f16":
        raise StudioError(
            what=f"An adapter GGUF cannot be made as {quant}.",
            why="The adapter and the base model's GGUF are written in f16, so together they behave exactly "
                "like your model.",
            actions=["Leave out the quantization (or choose f16).",
                     f"For a smaller {quant} file, export the merged model instead: --format gguf --quant {quant}."],
            code="adapter_quant_unsupported",
        )


def _link_or_copy(source: Path, target: Path) -> Path:
    """A hard link costs no disk space; a copy is the fallback across disks or where links are not allowed."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
    return target


def _register_with_ollama(result: ExportResult, info: RunInfo, profile: Profile) -> None:
    """Create the Ollama model only from a verified file: a broken model in Ollama helps nobody."""
    # The adapter variant gets its own name, so exporting both ways keeps both models in Ollama.
    name = model_name_for(info.run_id) + ("-adapter" if result.format == "ollama-adapter" else "")
    if not result.ok:
        result.notes.append(f"Not added to Ollama because verification failed. Model name would be {name}.")
        return
    result.ollama = create_in_ollama(result.out_dir, name, profile.example_prompts[0])
    if not result.ollama.created:
        result.notes.append(f"Ollama is not installed here. To add the model, run: {result.ollama.command}")


def _eos_ids(model: PreTrainedModel) -> list[int]:
    """The generation config's end-of-sequence ids (one id, a list, or none)."""
    eos = getattr(model.generation_config, "eos_token_id", None)
    return [] if eos is None else [eos] if isinstance(eos, int) else list(eos)


def _profile_or_default(info: RunInfo) -> Profile:
    try:
        return get_profile(info.profile_id)
    except StudioError:
        return get_profile(None)


def _listing(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())
