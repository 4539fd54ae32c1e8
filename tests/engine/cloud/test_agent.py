"""The run agent on a "rented machine" that is a real local process on 127.0.0.1, driven by the app's client:
a bundle uploaded, trained by Studio's own worker through the bundle's launch.sh, its events streamed, its
checkpoints synced as they seal, its result brought into the library; and the refusals (a wrong token, an
upload that reaches outside its folder, a machine that cannot be reached or has gone)."""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from studio.engine.cloud.agent import TOKEN_ENV
from studio.engine.cloud.remote_run import RemoteRun
from studio.engine.config import TrainConfig
from studio.engine.errors import StudioError
from studio.engine.handoff import export_bundle, import_results
from studio.engine.runs.creation import new_run_id
from studio.engine.runs.folders import create_run_dir, final_adapter_dir
from studio.engine.runs.registry import Registry
from studio.engine.training.checkpoints import list_checkpoints, verify

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="the bundle's launch script is a bash script")

SAMPLE = Path(__file__).resolve().parents[3] / "resources" / "samples" / "chatbot.jsonl"
TOKEN = "test-token-0123456789abcdef"


class Agent:
    def __init__(self, process: subprocess.Popen[str], url: str, home: Path, log: Path) -> None:
        self.process, self.url, self.home, self.log = process, url, home, log

    def client(self, token: str = TOKEN) -> RemoteRun:
        return RemoteRun(self.url, token, read_timeout_s=30)


def _start_agent(home: Path, *options: str) -> Agent:
    log = home.with_name(home.name + ".log")
    env = {**os.environ, TOKEN_ENV: TOKEN, "OMP_NUM_THREADS": "2"}
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "studio.engine.cloud.agent", "--host", "127.0.0.1", "--port", "0",
             "--home", str(home), "--launch-args", "--num_processes 1 --cpu", *options],
            stdout=subprocess.PIPE, stderr=stderr, text=True, env=env,
        )
    assert process.stdout is not None
    ready = json.loads(process.stdout.readline() or "{}")
    assert ready.get("agent") == "ready", log.read_text()
    return Agent(process, f"http://127.0.0.1:{ready['port']}", home, log)


def _end(agent: Agent) -> None:
    if agent.process.poll() is None:
        agent.process.send_signal(signal.SIGTERM)  # the agent stops a run still training, then exits
        try:
            agent.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            agent.process.kill()
            agent.process.wait()


@pytest.fixture
def agent(tmp_path) -> Iterator[Agent]:
    started = _start_agent(tmp_path / "machine")
    yield started
    _end(started)


def _told(events: list) -> list:
    """The events that say something (heartbeats only say the worker is alive)."""
    return [event for event in events if event.kind != "heartbeat"]


def _queued_run(tiny_model_dir: Path, **settings: object) -> Path:
    config = TrainConfig(base_model=str(tiny_model_dir), dataset_path=str(SAMPLE), micro_batch_size=2,
                         gradient_accumulation=1, max_length=64, eval_fraction=0.0, score_examples=False,
                         hardest_top_n=0, **settings)
    run_id = new_run_id("cloud")
    run_dir = create_run_dir(config, run_id)
    Registry().create_run(run_id, "cloud", config, run_dir)
    return run_dir


def test_a_bundle_trains_remotely_and_comes_back_as_a_version(agent, tiny_model_dir, tmp_path):
    local = _queued_run(tiny_model_dir, max_steps=4, checkpoint_every_steps=2)
    bundle = export_bundle(local, tmp_path / "studio-run.zip")
    remote = agent.client()
    assert remote.status().state == "empty"
    progress: list[tuple[int, int]] = []
    assert remote.upload(bundle, on_progress=lambda sent, total: progress.append((sent, total))) == local.name
    assert progress[-1][0] == progress[-1][1] == bundle.stat().st_size
    assert remote.status().state == "uploaded"
    assert remote.start().state == "running"

    batches, synced = [], []
    for batch in remote.follow(wait_s=5):
        batches.append(batch)
        if any(event.kind == "checkpoint" for event in batch.events):
            synced += remote.sync_checkpoints(local)  # as they seal, while the run trains
    synced += remote.sync_checkpoints(local)
    events = [event for batch in batches for event in batch.events]
    kinds = [event.kind for event in _told(events)]
    assert kinds[0] == "started" and kinds[-1] == "completed" and "checkpoint" in kinds
    assert [event.seq for event in events] == list(range(1, len(events) + 1))  # none lost, none repeated
    assert all(b.offset == a.next_offset for a, b in itertools.pairwise(batches))
    assert not any(batch.bad_lines for batch in batches)
    status = remote.status()
    assert (status.state, status.exit_code, status.events_bytes) == ("completed", 0, batches[-1].next_offset)

    # Reading on from any offset a client kept (a dropped connection) gives exactly the rest of the record.
    middle = batches[len(batches) // 2]
    again = remote.events(middle.offset)
    assert [event.seq for event in again.events] == [event.seq for event in events if event.seq >= middle.events[0].seq]
    assert remote.events(status.events_bytes).events == []

    assert synced, "at least one sealed checkpoint came back"
    for info in synced:
        assert info.path.parent == local / "checkpoints" and verify(info.path) is None
    assert {info.step for info in list_checkpoints(local)} >= {info.step for info in synced}
    assert not any(path.name.startswith(".incoming") for path in (local / "checkpoints").iterdir())
    assert remote.sync_checkpoints(local) == []  # nothing copied twice

    result = remote.fetch_result(tmp_path / "back")
    imported = import_results(result)
    record = Registry().get(imported.run_id)
    assert record is not None and record.status == "completed" and record.metrics["steps"] == 4
    assert (record.name, record.parent_id, record.version) == ("cloud", local.name, "1.0.1")
    assert record.dataset == str(SAMPLE)
    assert (final_adapter_dir(record.run_dir) / "adapter_model.safetensors").is_file()
    assert Registry().list_runs()[0].id == imported.run_id


def test_release_resume_and_stop_from_the_app(agent, tiny_model_dir, tmp_path):
    local = _queued_run(tiny_model_dir, max_steps=2000, checkpoint_every_steps=1000)
    remote = agent.client()
    remote.upload(export_bundle(local, tmp_path / "studio-run.zip"))
    remote.start()
    events, offset, sent = [], 0, False
    for batch in remote.follow(wait_s=5):
        events += batch.events
        offset = batch.next_offset
        if not sent and any(event.kind == "progress" for event in batch.events):
            sent = True
            remote.control("pause_release")  # checkpoint and exit, freeing the machine's memory
    paused = _told(events)[-1]
    assert paused.kind == "paused" and paused.released and remote.status().state == "paused"
    released = paused.step

    remote.control("resume")  # a new worker, from the checkpoint the release sealed
    assert remote.status().state == "running"
    resumed, sent = [], False
    for batch in remote.follow(since=offset, wait_s=5):
        resumed += batch.events
        if not sent and any(event.kind == "progress" for event in batch.events):
            sent = True
            remote.control("stop")
    started = next(event for event in resumed if event.kind == "started")
    assert started.resumed_from_step == released
    assert resumed[0].seq == events[-1].seq + 1  # the record goes on where it was
    assert _told(resumed)[-1].kind == "stopped" and "completed" not in {event.kind for event in resumed}
    status = remote.status()
    assert (status.state, status.exit_code) == ("stopped", 130)
    with pytest.raises(StudioError) as caught:
        remote.control("pause")
    assert caught.value.code == "agent_not_running"
    with pytest.raises(StudioError) as caught:
        remote.fetch_result(tmp_path / "back")
    assert caught.value.code == "agent_result_not_ready" and "state is 'stopped'" in caught.value.why
    synced = remote.sync_checkpoints(local)  # the checkpoint the stop sealed: the run can resume from it
    assert synced and verify(synced[-1].path) is None


def test_a_wrong_token_is_refused_and_nothing_starts(agent, tiny_model_dir, tmp_path):
    bundle = export_bundle(_queued_run(tiny_model_dir, max_steps=2), tmp_path / "studio-run.zip")
    intruder = agent.client("not-the-token-0123456789")
    for attempt in (intruder.status, lambda: intruder.upload(bundle), intruder.start,
                    lambda: intruder.control("stop"), lambda: intruder.events(0)):
        with pytest.raises(StudioError) as caught:
            attempt()
        assert caught.value.code == "remote_wrong_token" and "refused Studio's token" in caught.value.what
    for headers in ({}, {"Authorization": "Basic " + TOKEN}, {"Authorization": f"Bearer {TOKEN}x"}):
        response = requests.put(agent.url + "/bundle", data=bundle.read_bytes(), headers=headers, timeout=30)
        assert response.status_code == 401 and response.headers["X-Studio-Agent"] == "1"
        assert requests.post(agent.url + "/start", headers=headers, timeout=30).status_code == 401
    assert agent.client().status().state == "empty"
    assert not (agent.home / "bundle").exists()
    with pytest.raises(StudioError) as caught:
        agent.client().start()
    assert caught.value.code == "agent_cannot_start" and "no bundle" in caught.value.what


def _zip(path: Path, members: dict[str, bytes], link: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if link is not None:
            info = zipfile.ZipInfo(link)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return path


def test_an_upload_that_reaches_outside_its_folder_is_refused(agent, tmp_path):
    remote = agent.client()
    manifest = json.dumps({"format": 1, "source_run_id": "r1", "run_name": "r", "dataset_path": "d",
                           "base_model": "m"}).encode()
    base = {"b/manifest.json": manifest, "b/launch.sh": b"echo hi\n", "b/run/r1/config.json": b"{}"}
    cases = {
        "climbs": _zip(tmp_path / "climbs.zip", {**base, "b/../../escaped.txt": b"out"}),
        "absolute": _zip(tmp_path / "absolute.zip", {**base, "/tmp/escaped.txt": b"out"}),
        "link": _zip(tmp_path / "link.zip", base, link="b/data/passwd"),
    }
    for name, archive in cases.items():
        with pytest.raises(StudioError) as caught:
            remote.upload(archive)
        assert caught.value.code == "agent_bundle_unsafe", name
        assert "refused" in caught.value.what
    bad_id = json.loads(manifest) | {"source_run_id": "../../x"}
    with pytest.raises(StudioError) as caught:
        remote.upload(_zip(tmp_path / "bad-id.zip", {**base, "b/manifest.json": json.dumps(bad_id).encode()}))
    assert caught.value.code == "handoff_manifest_invalid"
    twice = _zip(tmp_path / "twice.zip", {**base, "b/data": b"a file", "b/data/x.jsonl": b"where the file is"})
    with pytest.raises(StudioError) as caught:
        remote.upload(twice)
    assert caught.value.code == "agent_bundle_invalid" and "could not be unpacked" in caught.value.why
    (tmp_path / "text.zip").write_text("not a zip")
    for archive in (tmp_path / "text.zip", _zip(tmp_path / "empty.zip", {})):
        with pytest.raises(StudioError) as caught:
            remote.upload(archive)
        assert caught.value.code == "agent_bundle_invalid"
    assert not (tmp_path / "escaped.txt").exists() and not list(tmp_path.parent.glob("escaped.txt"))
    assert remote.status().state == "empty" and sorted(p.name for p in agent.home.iterdir()) == []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_machine_and_one_that_disappears_are_told_apart(agent):
    with pytest.raises(StudioError) as caught:
        RemoteRun(f"http://127.0.0.1:{_free_port()}", TOKEN).status()
    assert caught.value.code == "remote_unreachable" and "cannot reach the rented machine" in caught.value.what
    remote = agent.client()
    assert remote.status().state == "empty"
    agent.process.kill()  # the provider takes the machine back
    agent.process.wait()
    with pytest.raises(StudioError) as caught:
        remote.status()
    assert caught.value.code == "remote_machine_gone" and "stopped answering" in caught.value.what
    assert any("checkpoints synced so far" in action for action in caught.value.actions)


def test_a_bundle_too_large_for_the_machine_is_refused_before_it_is_sent(tmp_path):
    small = _start_agent(tmp_path / "small-machine", "--max-upload-gb", "0.000001")  # about 1 KB
    try:
        big = _zip(tmp_path / "big.zip", {"b/data/train.jsonl": os.urandom(4096)})
        with pytest.raises(StudioError) as caught:
            small.client().upload(big)
        assert caught.value.code == "agent_bundle_too_large" and "too large" in caught.value.what
        response = requests.put(small.url + "/bundle", data=big.read_bytes(), timeout=30,
                                headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 413 and response.json()["error"]["code"] == "agent_bundle_too_large"
        assert small.client().status().state == "empty"
    finally:
        _end(small)
