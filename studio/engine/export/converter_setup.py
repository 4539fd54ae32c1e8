"""Install llama.cpp's own HF -> GGUF converter into the environment, once, at set-up time.

The llama-cpp-python wheel ships the runtime and the quantizer but not the Python conversion scripts;
only its source distribution carries them (vendor/llama.cpp). So set-up fetches the source
distribution matching the installed version and keeps just what conversion needs under
`<sys.prefix>/share/studio/llama.cpp-<version>/`. Exports then run it as a subprocess with no network.

Run: python -m studio.engine.export.converter_setup [--sdist FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from studio.engine.errors import StudioError
from studio.engine.progress import QUIET, Callbacks, TaskContext

PACKAGE = "llama-cpp-python"
MARKER = "studio-converter.json"
CONVERTER_SCRIPT = "convert_hf_to_gguf.py"
LORA_CONVERTER_SCRIPT = "convert_lora_to_gguf.py"  # PEFT adapter -> GGUF adapter (Ollama's ADAPTER line)
# A folder missing either script counts as not installed, so running the set-up again completes it.
_SCRIPTS = (CONVERTER_SCRIPT, LORA_CONVERTER_SCRIPT)
# What conversion imports or reads, relative to vendor/llama.cpp in the source distribution.
_KEEP = ("convert_hf_to_gguf.py", "convert_lora_to_gguf.py", "LICENSE", "conversion/", "gguf-py/gguf/",
         "models/templates/")


def llama_cpp_version() -> str:
    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        raise StudioError(
            what="llama-cpp-python is not installed, so Studio cannot make or check GGUF files.",
            why="It provides the GGUF runtime and quantizer that exports rely on.",
            actions=["Run Studio's setup again: scripts/setup.sh",
                     "Or install it: pip install llama-cpp-python"],
            code="llama_cpp_missing",
        ) from None


def converter_dir() -> Path:
    """Where the converter for the installed llama-cpp-python lives (STUDIO_LLAMA_CPP_DIR overrides)."""
    override = os.environ.get("STUDIO_LLAMA_CPP_DIR")
    if override:
        return Path(override).expanduser()
    return Path(sys.prefix) / "share" / "studio" / f"llama.cpp-{llama_cpp_version()}"


def is_installed(folder: Path | None = None) -> bool:
    folder = folder or converter_dir()
    try:
        info = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info.get("architectures"), list) and all((folder / name).is_file() for name in _SCRIPTS)


def require_converter() -> Path:
    """The converter folder, or a clear error naming the one command that installs it."""
    folder = converter_dir()
    if not is_installed(folder):
        raise StudioError(
            what="llama.cpp's GGUF converter is not set up on this machine.",
            why=f"Studio expected it in {folder}. It is installed once, together with Studio, so that "
                "exports never need the internet.",
            actions=[
                "Run once, while online: python -m studio.engine.export.converter_setup",
                "Or re-run Studio's setup: scripts/setup.sh",
                "Meanwhile, export the merged Hugging Face model or the adapter (--format hf or adapter).",
            ],
            code="converter_missing",
        )
    return folder


def supported_architectures(folder: Path | None = None) -> list[str]:
    """The text-model architectures (config.json `architectures`) this converter can handle."""
    folder = folder or require_converter()
    return list(json.loads((folder / MARKER).read_text(encoding="utf-8"))["architectures"])


def converter_env(folder: Path) -> dict[str, str]:
    """Environment for the converter subprocess: its own gguf-py first, and no network."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(folder / "gguf-py"), env.get("PYTHONPATH", "")) if p)
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", PYTHONUNBUFFERED="1")
    return env


def ensure_converter(sdist: Path | None = None, task: TaskContext = QUIET) -> Path:
    """Install the converter if missing, downloading the source distribution unless `sdist` is given."""
    target = converter_dir()
    if is_installed(target):
        task.report(f"The GGUF converter is already set up in {target}", 1.0)
        return target
    ver = llama_cpp_version()
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="studio-llama-sdist-") as tmp:
        if sdist is None:
            task.report(f"Downloading the {PACKAGE} {ver} source (about 77 MB, once)", 0.05)
            sdist = _download_sdist(ver, Path(tmp))
        task.report(f"Extracting the converter from {sdist.name}", 0.6)
        try:
            _extract(sdist, staging)
            task.report("Checking that the converter runs", 0.8)
            architectures = _registered_architectures(staging)
            info = {"llama_cpp_python": ver, "source": sdist.name, "architectures": architectures}
            (staging / MARKER).write_text(json.dumps(info, indent=1), encoding="utf-8")
            shutil.rmtree(target, ignore_errors=True)
            staging.rename(target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    task.report(f"GGUF converter ready in {target} ({len(architectures)} architectures)", 1.0)
    return target


def _download_sdist(ver: str, into: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               f"{PACKAGE}=={ver}", "-d", str(into)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    found = sorted(into.glob("*.tar.gz"))
    if done.returncode != 0 or not found:
        raise StudioError(
            what=f"Studio could not download the {PACKAGE} {ver} source distribution.",
            why=(done.stderr.strip().splitlines() or ["pip reported no file"])[-1],
            actions=[
                "Check the internet connection and run the set-up again.",
                "Or download it elsewhere and pass it: --sdist llama_cpp_python-<version>.tar.gz",
            ],
            code="converter_download_failed",
        )
    return found[0]


def _extract(sdist: Path, staging: Path) -> None:
    """Copy only the converter's files out of vendor/llama.cpp in the archive."""
    staging.mkdir(parents=True)
    with tarfile.open(sdist, "r:gz") as archive:
        members = []
        for member in archive.getmembers():
            parts = member.name.split("/vendor/llama.cpp/", 1)
            if len(parts) != 2 or not (member.isfile() and parts[1].startswith(_KEEP)):
                continue
            member.name = parts[1]
            members.append(member)
        missing = [name for name in _SCRIPTS if not any(m.name == name for m in members)]
        if missing:
            raise StudioError(
                what=f"{sdist.name} does not contain llama.cpp's converter.",
                why=f"No vendor/llama.cpp/{missing[0]} inside the archive.",
                actions=[f"Use the {PACKAGE} source distribution (.tar.gz) from PyPI."],
                code="converter_archive_invalid",
            )
        archive.extractall(staging, members=members, filter="data")


def _registered_architectures(folder: Path) -> list[str]:
    """Run the converter's own listing; this also proves its imports (torch, sentencepiece ...) work."""
    done = subprocess.run(
        [sys.executable, str(folder / CONVERTER_SCRIPT), "--print-supported-models"],
        capture_output=True, text=True, env=converter_env(folder), check=False,
    )
    listing = done.stderr + done.stdout
    text_part = listing.split("TEXT models:", 1)[-1].split("MMPROJ models:", 1)[0]
    names = [line.strip()[2:] for line in text_part.splitlines() if line.strip().startswith("- ")]
    if done.returncode != 0 or not names:
        raise StudioError(
            what="llama.cpp's converter was extracted but does not run.",
            why=(listing.strip().splitlines() or ["no output"])[-1],
            actions=["Install Studio's dependencies again (pip install -e .), then re-run this set-up."],
            code="converter_broken",
        )
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sdist", type=Path, help="use this source archive, no download")
    args = parser.parse_args(argv)
    try:
        ensure_converter(args.sdist, task=Callbacks(lambda message, _fraction: print(message, flush=True)))
    except StudioError as error:
        print(error.render(), file=sys.stderr)
        return int(error.exit_code)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
