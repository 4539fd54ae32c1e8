"""Sealed checkpoints: manifest hashes, completion marker, damage detection, retention."""

from __future__ import annotations

from pathlib import Path

from studio.engine.training import checkpoints


def _stage(tmp_path: Path, step: int, payload: bytes = b"weights") -> Path:
    staged = tmp_path / "staging" / f"checkpoint-{step}"
    (staged / "sub").mkdir(parents=True)
    (staged / "adapter_model.safetensors").write_bytes(payload * 100)
    (staged / "sub" / "optimizer.pt").write_bytes(b"opt" + bytes([step]))
    return staged


def test_seal_moves_into_place_and_verifies(tmp_path: Path):
    run = tmp_path / "run"
    info = checkpoints.seal(_stage(tmp_path, 5), run, 5, eval_loss=1.25)
    assert info.path == run / "checkpoints" / "step-00000005"
    assert not (tmp_path / "staging" / "checkpoint-5").exists()
    assert checkpoints.verify(info.path) is None and len(info.manifest_sha256) == 64
    assert checkpoints.list_checkpoints(run)[0].eval_loss == 1.25


def test_damaged_and_unfinished_checkpoints_are_skipped(tmp_path: Path):
    run = tmp_path / "run"
    for step in (2, 4, 6):
        checkpoints.seal(_stage(tmp_path, step), run, step)
    (run / "checkpoints" / "step-00000006" / "COMPLETE").unlink()  # killed while sealing
    damaged = run / "checkpoints" / "step-00000004" / "sub" / "optimizer.pt"
    damaged.write_bytes(b"garbage")
    reports: list[tuple[int, str]] = []
    good = checkpoints.latest_good(run, lambda info, problem: reports.append((info.step, problem)))
    assert good is not None and good.step == 2
    assert [step for step, _ in reports] == [6, 4]
    assert "completion marker" in reports[0][1] and "optimizer.pt" in reports[1][1]
    (run / "checkpoints" / "step-00000002" / "adapter_model.safetensors").unlink()
    assert checkpoints.latest_good(run) is None


def test_retention_keeps_best_by_eval_loss_and_latest(tmp_path: Path):
    run = tmp_path / "run"
    for step, loss in [(1, 2.0), (2, 0.5), (3, 1.0), (4, 1.5), (5, None), (6, 3.0)]:
        checkpoints.seal(_stage(tmp_path, step), run, step, eval_loss=loss)
    checkpoints.apply_retention(run, keep_best=1, keep_last=2)
    assert [info.step for info in checkpoints.list_checkpoints(run)] == [2, 5, 6]
    assert checkpoints.best(run).step == 2
