"""`studio doctor`: what this machine has, which backend will train, and what is missing and what that means."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import asdict, dataclass
from typing import Any

import typer

from studio.cli.output import console, friendly_errors, print_json

PACKAGES = ("torch", "transformers", "peft", "trl", "datasets", "accelerate", "huggingface-hub",
            "llama-cpp-python", "gguf", "PySide6-Essentials", "bitsandbytes", "unsloth")
LOW_DISK_MB = 5 * 1024
LOW_RAM_MB = 8 * 1024


@dataclass(frozen=True)
class Finding:
    what: str
    means: str
    severity: str  # "info" | "warning" | "error"


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def findings(hardware: Any, versions: dict[str, str | None], builtin_ready: bool) -> list[Finding]:
    """What is missing or limited on this machine, each with what it means for the person."""
    found: list[Finding] = []
    device = hardware.device
    if device == "cpu":
        found.append(Finding(
            "No NVIDIA GPU", "Training runs on the CPU, slowly (minutes for the built-in model, hours for "
            "larger ones); Unsloth and 4-bit QLoRA are unavailable.", "warning"))
    elif device == "mps":
        found.append(Finding(
            "Apple GPU (MPS), no NVIDIA GPU", "Training runs on the Apple GPU with transformers + PEFT; Unsloth "
            "and 4-bit QLoRA are unavailable.", "info"))
    else:
        if hardware.gpu is not None and not hardware.gpu.bf16:
            found.append(Finding(f"{hardware.gpu.name} has no bf16", "Training uses fp16 with loss scaling, "
                                 "which is a little less stable.", "info"))
        if versions.get("unsloth") is None:
            found.append(Finding("Unsloth is not installed", "Training uses transformers + PEFT, about half "
                                 "Unsloth's speed. Install it with: pip install 'studio[cuda]'.", "info"))
        if versions.get("bitsandbytes") is None:
            found.append(Finding("bitsandbytes is not installed", "4-bit QLoRA is unavailable, so models that "
                                 "only fit in 4-bit cannot be trained. Install: pip install 'studio[cuda]'.",
                                 "warning"))
    if hardware.gpus and not hardware.cuda_available:
        found.append(Finding("The installed PyTorch has no CUDA support", "The NVIDIA GPU cannot be used; "
                             "training falls back to the CPU. Reinstall PyTorch with CUDA.", "warning"))
    if versions.get("llama-cpp-python") is None:
        found.append(Finding("llama-cpp-python is not installed", "Export to GGUF and Ollama, and checking the "
                             "exported model, are unavailable. Run Studio's setup again.", "warning"))
    if versions.get("torch") is None:
        found.append(Finding("PyTorch is not installed", "Nothing can be trained. Run Studio's setup again.",
                             "error"))
    if not builtin_ready:
        found.append(Finding("The built-in model is not unpacked yet", "The first training or plan with it "
                             "takes about a minute longer, once.", "info"))
    if hardware.disk_free_mb < LOW_DISK_MB:
        found.append(Finding(f"Only {hardware.disk_free_mb / 1024:.1f} GB of free disk", "Checkpoints and "
                             "exports may not fit; free some space or set STUDIO_HOME elsewhere.", "warning"))
    if hardware.ram_total_mb < LOW_RAM_MB:
        found.append(Finding(f"Only {hardware.ram_total_mb / 1024:.0f} GB of memory", "Only small models (up "
                             "to about 0.5B parameters) can be trained here.", "warning"))
    return found


@friendly_errors
def doctor(
    json_output: bool = typer.Option(False, "--json", help="Print machine-readable JSON (see docs/cli-json.md)."),
    refresh: bool = typer.Option(False, "--refresh", help="Measure again instead of using the 5-minute cache."),
    measure: bool = typer.Option(False, "--measure", help="Also measure matrix-multiply speed (about 1 s)."),
) -> None:
    """Check this machine: hardware, the training backend Studio will use, and what is missing."""
    from studio.engine.hardware import probe
    from studio.engine.models.builtin import is_materialized
    from studio.engine.paths import studio_home
    from studio.engine.training.backends.choice import choose_backend, unsloth_installed

    hardware = probe(use_cache=not refresh, measure_throughput=measure)
    backend = choose_backend(hardware, "auto", unsloth_installed())
    versions = package_versions()
    issues = findings(hardware, versions, is_materialized())
    if json_output:
        print_json({
            "hardware": hardware.to_dict(),
            "device": hardware.device,
            "backend": {"name": backend.name, "reason": backend.reason},
            "findings": [asdict(item) for item in issues],
            "packages": versions,
            "studio_home": str(studio_home()),
            "notes": list(hardware.notes),
        })
    else:
        _render(hardware, backend, issues, versions, str(studio_home()))
    if any(item.severity == "error" for item in issues):
        raise typer.Exit(1)


def _render(hardware: Any, backend: Any, issues: list[Finding], versions: dict[str, str | None],
            home: str) -> None:
    from rich.table import Table

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("System", hardware.os)
    table.add_row("CPU", f"{hardware.cpu_name} ({hardware.cpu_cores} cores)")
    table.add_row("Memory", f"{hardware.ram_available_mb / 1024:.1f} GB free of {hardware.ram_total_mb / 1024:.1f} GB")
    table.add_row("Disk", f"{hardware.disk_free_mb / 1024:.0f} GB free in {home}")
    for gpu in hardware.gpus:
        power = f", {gpu.power_limit_w:.0f} W" if gpu.power_limit_w else ""
        table.add_row("GPU", f"{gpu.name}: {gpu.free_mb / 1024:.1f} GB free of {gpu.total_mb / 1024:.1f} GB, "
                             f"compute {gpu.compute_capability[0]}.{gpu.compute_capability[1]}, "
                             f"driver {gpu.driver_version}, CUDA {gpu.cuda_version}{power}")
    if hardware.mps:
        table.add_row("GPU", "Apple GPU (MPS)")
    if hardware.matmul_gflops:
        table.add_row("Speed", f"{hardware.matmul_gflops:.0f} GFLOP/s matrix multiply")
    table.add_row("Trains on", hardware.device.upper())
    table.add_row("Backend", f"{backend.name}: {backend.reason}")
    table.add_row("Packages", ", ".join(f"{name} {version}" for name, version in versions.items() if version))
    console.print(table)
    for note in hardware.notes:
        console.print(f"[yellow]Note:[/] {note}", highlight=False)
    if not issues:
        console.print("[green]Everything Studio needs is here.[/]")
        return
    console.print()
    colours = {"info": "cyan", "warning": "yellow", "error": "red"}
    for item in issues:
        console.print(f"[{colours[item.severity]}]• {item.what}[/]: {item.means}", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("doctor")(doctor)
