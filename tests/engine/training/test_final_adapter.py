"""The final adapter is written whole or not at all, with a sha256 manifest that export and continue check."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from studio.engine.errors import StudioError
from studio.engine.export.run_info import load_run_info
from studio.engine.runs.folders import final_adapter_dir
from studio.engine.runs.registry import Registry
from studio.engine.training import checkpoints
from studio.engine.training.backends.hf import save_final_adapter
from studio.engine.training.final_adapter import check_final_adapter
from tests.engine.training.worker_runs import run_worker_process


class _Saves:
    """Stands in for a PEFT model or a tokenizer: save_pretrained writes `files`, then fails if told to."""

    def __init__(self, files: dict[str, bytes], fail: Exception | None = None) -> None:
        self.files, self.fail = files, fail

    def save_pretrained(self, folder: str | Path) -> None:
        for name, data in self.files.items():
            Path(folder, name).write_bytes(data)
        if self.fail is not None:
            raise self.fail


class _KilledError(Exception):
    """A crash that is not an OSError (the process dies in the middle of saving the tokenizer)."""


MODEL_FILES = {"adapter_config.json": b"{}", "adapter_model.safetensors": b"\1" * 256}
TOKENIZER_FILES = {"tokenizer.json": b"{}"}


@pytest.mark.slow
def test_a_finished_run_leaves_a_final_adapter_with_a_manifest_and_no_staging_folder(make_run) -> None:
    run_dir = make_run("sealed", max_steps=2, eval_fraction=0.0, checkpoint_every_steps=2)
    done = run_worker_process(run_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    adapter = final_adapter_dir(run_dir)
    listed = json.loads((adapter / checkpoints.MANIFEST).read_text())["files"]
    assert {"adapter_model.safetensors", "adapter_config.json", "tokenizer_config.json"} <= set(listed)
    assert checkpoints.check_manifest(adapter) is None
    assert sorted(path.name for path in adapter.parent.iterdir()) == ["adapter"]  # no adapter.partial left
    assert load_run_info(run_dir).adapter_dir == adapter  # export accepts it
    assert Registry().continue_config(run_dir.name)[1].init_adapter == str(adapter)  # and so does continue


def test_a_crash_during_the_save_leaves_no_half_written_final_adapter(tmp_path: Path) -> None:
    disk_full = OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OSError) as caught:
        save_final_adapter(_Saves({"adapter_config.json": b"{}"}, fail=disk_full), _Saves(TOKENIZER_FILES), tmp_path)
    assert caught.value.errno == errno.ENOSPC  # the worker reports a full disk in its own words
    assert list((tmp_path / "final").iterdir()) == []  # neither final/adapter nor its staging folder
    with pytest.raises(_KilledError):
        save_final_adapter(_Saves(MODEL_FILES), _Saves(TOKENIZER_FILES, fail=_KilledError("killed")), tmp_path)
    assert not final_adapter_dir(tmp_path).exists()
    assert save_final_adapter(_Saves(MODEL_FILES), _Saves(TOKENIZER_FILES), tmp_path) == final_adapter_dir(tmp_path)
    assert sorted(p.name for p in final_adapter_dir(tmp_path).iterdir()) == [
        "adapter_config.json", "adapter_model.safetensors", "manifest.json", "tokenizer.json"]


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        (lambda a: (a / "adapter_model.safetensors").write_bytes(b"\1" * 100), "adapter_model.safetensors"),
        (lambda a: (a / "adapter_config.json").write_text('{"r": 64}'), "adapter_config.json"),
        (lambda a: (a / "tokenizer.json").unlink(), "tokenizer.json is missing"),
        (lambda a: (a / "manifest.json").write_text("{not json"), "manifest is missing or unreadable"),
    ],
)
def test_an_adapter_that_does_not_match_its_manifest_is_refused(tmp_path: Path, damage, named: str) -> None:
    adapter = save_final_adapter(_Saves(MODEL_FILES), _Saves(TOKENIZER_FILES), tmp_path / "run-1")
    check_final_adapter(tmp_path / "run-1")
    damage(adapter)
    with pytest.raises(StudioError) as caught:
        check_final_adapter(tmp_path / "run-1")
    error = caught.value
    assert error.code == "adapter_damaged" and "run-1" in error.what and named in error.why
    assert len(error.actions) == 3 and any("studio train --config" in action for action in error.actions)


def test_an_adapter_saved_before_manifests_is_accepted_as_it_is(tmp_path: Path) -> None:
    adapter = save_final_adapter(_Saves(MODEL_FILES), _Saves(TOKENIZER_FILES), tmp_path)
    (adapter / checkpoints.MANIFEST).unlink()
    (adapter / "adapter_model.safetensors").write_bytes(b"\2" * 10)
    check_final_adapter(tmp_path)


def test_a_continued_run_refuses_an_adapter_damaged_after_it_was_queued(tmp_path: Path) -> None:
    from studio.engine.config import TrainConfig
    from studio.engine.training.backends.hf import initial_adapter

    adapter = save_final_adapter(_Saves(MODEL_FILES), _Saves(TOKENIZER_FILES), tmp_path / "run-1")
    config = TrainConfig(init_adapter=str(adapter))
    assert initial_adapter(config) == adapter
    (adapter / "adapter_model.safetensors").write_bytes(b"\1" * 100)
    with pytest.raises(StudioError) as caught:
        initial_adapter(config)  # where the worker loads it, before the base model's work is spent
    assert caught.value.code == "adapter_damaged" and "adapter_model.safetensors" in caught.value.why
