"""Benchmark: `studio models download` against `hf download` (huggingface_hub's own CLI), same files, same
local Hub server, a fresh Hugging Face cache for every download.

The server (tests/hub_server.py, a separate process on 127.0.0.1) serves the built-in SmolLM2-135M folder
(about 540 MB) unless --model gives another folder. Both sides are timed end to end as commands, start-up
included, in alternating order after one round that is not kept (it only warms the page cache), and
the median of --repeat runs is kept; `hf download` gets the exact file
list that Studio fetched. The ratio is Studio's speed over hf's (target: at least 0.95x). The same is then
done inside this process, `download_model` against `snapshot_download` of the same files, which leaves out
the two programs' start-up.

On loopback (500 MiB/s and more) the two programs' start-up weighs most; --rate paces the server like a real
link, shared by all connections, where the transfer does.

    .venv/bin/python bench/model_download.py [--model FOLDER] [--repeat 5] [--scratch /dev/shm] [--rate MIB_S]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_RATIO = 0.95
REPO = "bench/model"
ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
Timings = dict[str, list[float]]


def serve(folder: Path, rate: float) -> tuple[subprocess.Popen[str], str]:
    server = subprocess.Popen([sys.executable, "-m", "tests.hub_server", f"{REPO}={folder}", "--rate", str(rate)],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    return server, server.stdout.readline().strip()


def timed(command: list[str], endpoint: str, cache: Path) -> tuple[float, str]:
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "0",
           "TRANSFORMERS_OFFLINE": "0", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_TOKEN": ""}
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command[:3])} failed:\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="Model folder to serve (default: the built-in model).")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--scratch", type=Path, help="Where the fresh caches go (default: the temp folder; "
                                                     "/dev/shm takes the disk's own variance out).")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="Limit the server to this many MiB/s, like a real link (default: loopback speed, "
                             "where the two programs' start-up weighs most).")
    args = parser.parse_args()
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # read when huggingface_hub is imported
    if args.model is None:
        from studio.engine.models.builtin import ensure_builtin

        args.model = ensure_builtin()
    server, endpoint = serve(args.model, args.rate)
    try:
        with tempfile.TemporaryDirectory(prefix="studio-bench-download-", dir=args.scratch) as scratch:
            size, files, commands = compare_commands(endpoint, Path(scratch), args.repeat)
            calls = compare_calls(endpoint, Path(scratch), args.repeat, files)
    finally:
        server.terminate()
        server.wait()
    mb = size / 1024**2
    link = f"a {args.rate:g} MiB/s link" if args.rate else "loopback"
    print(f"model: {args.model} ({mb:.0f} MiB in {len(files)} files), {link}, {args.repeat} runs each, median")
    report("commands", "hf download", "studio models download", commands, mb)
    report("in-process calls", "snapshot_download", "download_model", calls, mb)


def compare_commands(endpoint: str, scratch: Path, repeat: int) -> tuple[int, list[str], Timings]:
    """`hf download` and `studio models download --json` as commands, in alternating order."""
    timings: Timings = {"hf": [], "studio": []}
    files: list[str] = []
    size = 0
    for attempt in range(repeat + 1):  # round 0 warms both programs' files in the page cache and is not kept
        for side in ("studio", "hf") if attempt % 2 == 0 or not files else ("hf", "studio"):
            cache = scratch / f"{side}-{attempt}"
            if side == "studio":
                seconds, out = timed([str(BIN / "studio"), "models", "download", REPO, "--json"], endpoint, cache)
                result = json.loads(out)
                size = result["downloaded_bytes"]
                files = sorted(p.name for p in Path(result["path"]).iterdir())
            else:
                seconds, _ = timed([str(BIN / "hf"), "download", REPO, *files, "--quiet"], endpoint, cache)
            if attempt:
                timings[side].append(seconds)
            shutil.rmtree(cache)
    return size, files, timings


def compare_calls(endpoint: str, scratch: Path, repeat: int, files: list[str]) -> Timings:
    """download_model against snapshot_download of the same files, in this process."""
    from huggingface_hub import constants, snapshot_download

    from studio.engine.models.download import download_model

    constants.HF_HUB_OFFLINE = False  # read at import; the commands above got it from the environment
    timings: Timings = {"hf": [], "studio": []}
    for attempt in range(repeat):
        for side in ("studio", "hf") if attempt % 2 == 0 else ("hf", "studio"):
            cache = scratch / f"call-{side}-{attempt}"
            started = time.perf_counter()
            if side == "studio":
                download_model(REPO, endpoint=endpoint, cache_dir=cache)
            else:
                snapshot_download(REPO, endpoint=endpoint, cache_dir=cache, allow_patterns=files, token=False)
            timings[side].append(time.perf_counter() - started)
            shutil.rmtree(cache)
    return timings


def report(what: str, hf_label: str, studio_label: str, timings: Timings, mb: float) -> None:
    hf, studio = statistics.median(timings["hf"]), statistics.median(timings["studio"])
    print(f"{what}:")
    print(f"  {hf_label:24} {hf:6.2f} s  ({mb / hf:5.0f} MiB/s)  runs: {_list(timings['hf'])}")
    print(f"  {studio_label:24} {studio:6.2f} s  ({mb / studio:5.0f} MiB/s)  runs: {_list(timings['studio'])}")
    ratio = hf / studio
    print(f"  speed ratio Studio / hf: {ratio:.2f}x (target >= {TARGET_RATIO}x): "
          f"{'met' if ratio >= TARGET_RATIO else 'NOT met'}")


def _list(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
