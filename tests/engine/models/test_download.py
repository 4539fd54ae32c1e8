"""Downloading a Hub model into the Hugging Face cache, against a local fake Hub (tests/hub_server.py)
serving a real model's files: progress, cancel, resume, tokens, disk space, offline and bad repos."""

from __future__ import annotations

import errno
import hashlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.engine.errors import StudioError
from studio.engine.models.download import DownloadCancelledError, DownloadProgress, download_model
from studio.engine.models.resolve import hf_cache_snapshot, resolve_model
from tests.hub_server import FakeHub, downloads_finished, model_folder, use_fake_hub, wait_until

REPO = "owner/tiny-chat"
JUNK = {"pytorch_model.bin": b"pickle" * 100, "original/consolidated.00.pth": b"pth" * 100,
        "consolidated.safetensors": b"dup" * 100, ".gitattributes": b"*.bin filter=lfs\n"}


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeHub]:
    with FakeHub() as server:
        use_fake_hub(monkeypatch, server, tmp_path)
        yield server


@pytest.fixture
def repo_dir(tiny_model_dir: Path, tmp_path: Path) -> Path:
    return model_folder(tiny_model_dir, tmp_path / "repo", extra=JUNK)


def cache_dir() -> Path:
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def leftovers() -> list[Path]:
    return list(cache_dir().rglob("*.incomplete"))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_reports_bytes_and_fetches_only_what_studio_trains_from(hub, repo_dir, tiny_model_dir, monkeypatch):
    hub.add_repo(REPO, repo_dir)
    monkeypatch.setenv("HF_TOKEN", "hf_good")
    hub.chunk_delay_s = 0.01  # about 2 s, long enough for a speed and a time left
    seen: list[DownloadProgress] = []
    result = download_model(REPO, progress=seen.append)
    assert {r.token for r in hub.requests} == {None}  # a public model is fetched without any token

    wanted = {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
              "tokenizer_config.json", "chat_template.jinja"}
    assert {p.name for p in result.path.iterdir()} == wanted
    assert all(not hub.fetched(name) for name in JUNK)
    total = sum((tiny_model_dir / name).stat().st_size for name in wanted)
    assert result.total_bytes == result.downloaded_bytes == total and result.notes == []
    done = [p.done_bytes for p in seen]
    assert done == sorted(done) and seen[-1].done_bytes == seen[-1].total_bytes == total
    assert seen[-1].files_done == seen[-1].files_total == len(wanted) and seen[-1].fraction == 1.0
    measured = [p for p in seen if p.bytes_per_s > 0]
    assert measured and all(p.eta_s is not None for p in measured)
    assert 1e6 < max(p.bytes_per_s for p in measured) < 1e8  # 64 KB every 10 ms per file, a few files at once
    assert sha256(result.path / "model.safetensors") == sha256(tiny_model_dir / "model.safetensors")
    # config.json comes last, which is what makes the snapshot count as complete; then main is resolved again
    file_gets = [r.path for r in hub.requests if r.method == "GET" and "/resolve/" in r.path]
    assert file_gets[-1] == f"/{REPO}/resolve/{result.revision}/config.json"
    assert hub.requests[-1].path == f"/api/models/{REPO}"  # repo_info of main
    assert hf_cache_snapshot(REPO) == result.path and resolve_model(REPO) == result.path.resolve()

    hub.chunk_delay_s = 0.0
    again = download_model(REPO)
    assert again.path == result.path and again.downloaded_bytes == 0
    assert len(hub.fetched("model.safetensors")) == 1


def test_cancel_stops_promptly_keeps_finished_files_and_the_next_download_completes(hub, repo_dir):
    hub.add_repo(REPO, repo_dir)
    hub.chunk_delay_s = 0.02  # about 4 s for the weights
    latest: list[DownloadProgress] = []
    started = time.monotonic()
    with pytest.raises(DownloadCancelledError) as caught:
        download_model(REPO, progress=latest.append, should_cancel=lambda: bool(latest) and latest[-1].files_done >= 3)
    assert time.monotonic() - started < 2.5
    assert caught.value.code == "download_cancelled" and caught.value.exit_code == 130
    assert latest[-1].done_bytes < latest[-1].total_bytes
    assert hf_cache_snapshot(REPO) is None  # not taken as a model: its config.json is not there
    with pytest.raises(StudioError):
        resolve_model(REPO)
    assert wait_until(downloads_finished) and leftovers() == []  # partial files deleted at the workers' next 10 MB
    finished = [name for name in ("generation_config.json", "tokenizer_config.json", "chat_template.jinja")
                if hub.fetched(name)]

    hub.chunk_delay_s = 0.0
    result = download_model(REPO)
    assert hf_cache_snapshot(REPO) == result.path and (result.path / "model.safetensors").is_file()
    assert all(len(hub.fetched(name)) == 1 for name in finished)  # not fetched again


def test_a_new_commit_during_the_download_is_said_and_never_mixed_in(hub, repo_dir):
    repo = hub.add_repo(REPO, repo_dir)
    started_at = repo.sha
    hub.chunk_delay_s = 0.01
    with pytest.raises(StudioError) as caught:  # the authors push while the files are being fetched
        download_model(REPO, progress=lambda p: p.files_done and repo.sha == started_at and repo.publish())
    assert caught.value.code == "download_changed"
    fetched = cache_dir() / "models--owner--tiny-chat" / "snapshots" / started_at
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in fetched.iterdir()}
    assert hf_cache_snapshot(REPO) is None  # main now means the new commit, which is not downloaded yet
    hub.chunk_delay_s = 0.0
    again = download_model(REPO)
    assert again.revision == repo.sha != started_at and again.downloaded_bytes == 0  # same files, from blobs


def test_a_dropped_connection_resumes_where_it_stopped(hub, repo_dir, tiny_model_dir):
    from huggingface_hub import constants

    hub.add_repo(REPO, repo_dir)
    hub.drop_once["model.safetensors"] = 12_000_000
    result = download_model(REPO)
    # huggingface_hub writes (and so can resume from) whole 10 MB chunks: the first one is not fetched again
    kept = 12_000_000 // constants.DOWNLOAD_CHUNK_SIZE * constants.DOWNLOAD_CHUNK_SIZE
    assert kept > 0 and [r.range for r in hub.fetched("model.safetensors")] == [None, f"bytes={kept}-"]
    assert sha256(result.path / "model.safetensors") == sha256(tiny_model_dir / "model.safetensors")


def test_a_connection_torn_down_by_another_request_of_the_program_is_taken_up_again(hub, repo_dir, tiny_model_dir):
    from huggingface_hub import close_session

    hub.add_repo(REPO, repo_dir)
    hub.chunk_delay_s = 0.005
    closed: list[bool] = []

    def another_request_fails_to_connect(state: DownloadProgress) -> None:
        if state.done_bytes and not closed:  # huggingface_hub then closes its shared client, in-flight reads too
            closed.append(True)
            close_session()

    result = download_model(REPO, progress=another_request_fails_to_connect)
    assert closed and [r.range for r in hub.fetched("model.safetensors")] == [None, None]  # Studio took it up
    assert sha256(result.path / "model.safetensors") == sha256(tiny_model_dir / "model.safetensors")
    assert result.downloaded_bytes == result.total_bytes


def test_a_gated_model_asks_for_a_token_then_downloads_with_one(hub, repo_dir):
    from studio.engine.models.hub_auth import save_token

    hub.add_repo(REPO, repo_dir, gated=True)
    with pytest.raises(StudioError) as caught:
        download_model(REPO)
    assert caught.value.code == "download_needs_token" and "gated" in caught.value.why
    assert not hub.fetched("model.safetensors") and hf_cache_snapshot(REPO) is None

    with pytest.raises(StudioError) as refused:
        download_model(REPO, token="hf_mistyped")
    assert refused.value.code == "download_needs_token" and "refused the token (from app)" in refused.value.why

    assert download_model(REPO, token="hf_good").path == hf_cache_snapshot(REPO)
    assert {r.token for r in hub.fetched("model.safetensors")} == {"hf_good"}

    shutil.rmtree(cache_dir())
    save_token("hf_good")  # what the app does with a token that worked: the next download finds it
    assert download_model(REPO).path == hf_cache_snapshot(REPO)


def test_a_private_model_without_a_token_reads_as_not_found_and_says_why(hub, repo_dir, monkeypatch):
    hub.add_repo(REPO, repo_dir, private=True)
    with pytest.raises(StudioError) as caught:
        download_model(REPO)
    assert caught.value.code == "download_not_found" and "If it is private" in " ".join(caught.value.actions)
    monkeypatch.setenv("HF_TOKEN", "hf_good")
    assert download_model(REPO).path == hf_cache_snapshot(REPO)


def test_not_enough_disk_is_said_before_downloading(hub, repo_dir, monkeypatch):
    hub.add_repo(REPO, repo_dir)
    monkeypatch.setattr("studio.engine.models.download._free_bytes", lambda path: 300 * 1024**2)
    with pytest.raises(StudioError) as caught:
        download_model(REPO)
    error = caught.value
    assert error.code == "download_disk_full" and "It needs 16 MB" in error.why and "300 MB free" in error.why
    assert len(error.actions) == 3 and not hub.fetched("model.safetensors")


def test_a_disk_that_fills_during_the_download_is_the_same_plain_message(hub, repo_dir, monkeypatch):
    from huggingface_hub import file_download

    class FillingDisk:
        def __init__(self, file):
            self.file = file

        def write(self, data: bytes) -> int:
            if self.file.tell() + len(data) > 2_000_000:
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.file.write(data)

        def __getattr__(self, name):
            return getattr(self.file, name)

    real_http_get = file_download.http_get
    monkeypatch.setattr(file_download, "http_get", lambda url, temp_file, **kw: real_http_get(
        url, FillingDisk(temp_file), **kw))
    hub.add_repo(REPO, repo_dir)
    with pytest.raises(StudioError) as caught:
        download_model(REPO)
    assert caught.value.code == "download_disk_full" and "filled up during the download" in caught.value.why
    assert hf_cache_snapshot(REPO) is None and leftovers() == []


def test_offline_or_unreachable_is_one_plain_message_and_never_hangs(hub, repo_dir, monkeypatch):
    from huggingface_hub import constants

    hub.add_repo(REPO, repo_dir)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(StudioError) as offline:
        download_model(REPO)
    assert offline.value.code == "hub_offline" and "Offline mode" in offline.value.why
    assert offline.value.what == "Studio cannot download from Hugging Face right now."
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)

    with FakeHub() as closed:
        gone = closed.url  # nothing listens there once it is closed
    with pytest.raises(StudioError) as unreachable:
        download_model(REPO, endpoint=gone)
    assert unreachable.value.code == "hub_offline" and "could not be reached" in unreachable.value.why

    hub.stall = "/tree/"  # the file listing inside snapshot_download, which has no timeout of its own
    started = time.monotonic()
    with pytest.raises(StudioError) as listing:
        download_model(REPO, first_bytes_timeout_s=1.0)
    assert listing.value.code == "hub_offline" and "sent nothing for 1 seconds" in listing.value.why
    assert time.monotonic() - started < 5 and hf_cache_snapshot(REPO) is None
    hub.release()
    assert wait_until(downloads_finished)  # the abandoned listing ends once the Hub answers again

    hub.stall = "/api/"  # accepts the connection and never answers
    started = time.monotonic()
    with pytest.raises(StudioError) as silent:
        download_model(REPO, timeout_s=1.0)
    assert silent.value.code == "hub_offline" and time.monotonic() - started < 5


@pytest.mark.parametrize(("repo", "revision", "code"), [
    ("owner/no-such-model", None, "download_not_found"),
    (REPO, "no-such-branch", "download_revision_not_found"),
    ("not a model id", None, "download_bad_id"),
])
def test_unknown_repos_and_revisions_are_plain_errors(hub, repo_dir, repo, revision, code):
    hub.add_repo(REPO, repo_dir)
    with pytest.raises(StudioError) as caught:
        download_model(repo, revision)
    assert caught.value.code == code and caught.value.actions


def test_pickle_only_weights_are_refused_before_anything_is_fetched(hub, tiny_model_dir, tmp_path):
    folder = model_folder(tiny_model_dir, tmp_path / "bin-only", drop=("model.safetensors",),
                          extra={"pytorch_model.bin": b"pickle" * 100})
    hub.add_repo(REPO, folder)
    with pytest.raises(StudioError) as caught:
        download_model(REPO)
    assert caught.value.code == "download_not_safetensors" and "safetensors only" in caught.value.what
    assert not [r for r in hub.requests if "/resolve/" in r.path]


def test_a_model_without_a_chat_template_downloads_with_a_note(hub, tiny_model_dir, tmp_path):
    hub.add_repo(REPO, model_folder(tiny_model_dir, tmp_path / "base", drop=("chat_template.jinja",)))
    result = download_model(REPO)
    assert hf_cache_snapshot(REPO) == result.path
    assert len(result.notes) == 1 and "no chat template" in result.notes[0] and "plain text" in result.notes[0]


def test_remote_code_is_refused_unless_allowed_knowingly(hub, tiny_model_dir, tmp_path):
    folder = model_folder(tiny_model_dir, tmp_path / "custom", extra={"modeling_custom.py": b"import os\n"},
                          config={"auto_map": {"AutoModelForCausalLM": "modeling_custom.CustomModel"}})
    hub.add_repo(REPO, folder)
    with pytest.raises(StudioError) as caught:
        download_model(REPO)
    assert caught.value.code == "download_remote_code" and "--allow-remote-code" in " ".join(caught.value.actions)
    assert not hub.fetched("model.safetensors") and hf_cache_snapshot(REPO) is None
    result = download_model(REPO, allow_remote_code=True)
    assert (result.path / "modeling_custom.py").is_file()


def test_the_real_builtin_model_downloads_intact(hub, builtin_model_dir):
    hub.add_repo("HuggingFaceTB/SmolLM2-135M-Instruct", builtin_model_dir, skip=("studio-materialized.json",))
    result = download_model("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert result.downloaded_bytes > 500_000_000 and result.notes == []
    for name in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (result.path / name).stat().st_size == (builtin_model_dir / name).stat().st_size
    assert resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct") == result.path.resolve()
