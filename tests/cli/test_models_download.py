"""`studio models download REPO`: against the local fake Hub, next to `studio models` and its --search."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from studio.cli.main import app
from studio.engine.models.resolve import hf_cache_snapshot
from tests.hub_server import FakeHub, downloads_finished, model_folder, use_fake_hub, wait_until

REPO = "owner/tiny-chat"
runner = CliRunner()


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_model_dir: Path) -> Iterator[FakeHub]:
    with FakeHub() as server:
        use_fake_hub(monkeypatch, server, tmp_path)
        server.add_repo(REPO, model_folder(tiny_model_dir, tmp_path / "repo"))
        yield server


def test_download_json_then_the_model_is_listed_by_studio_models(hub):
    result = runner.invoke(app, ["models", "download", REPO, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["repo_id"] == REPO and data["downloaded_bytes"] == data["total_bytes"] > 10_000_000
    assert data["path"] == str(hf_cache_snapshot(REPO)) and data["notes"] == [] and len(data["revision"]) == 40

    listed = runner.invoke(app, ["models", "--json"])
    assert listed.exit_code == 0, listed.output
    refs = {row["ref"]: row["source"] for row in json.loads(listed.stdout)["models"]}
    assert refs[REPO] == "hf_cache" and refs["builtin:smollm2-135m-instruct"] == "builtin"
    table = runner.invoke(app, ["models"], env={"COLUMNS": "200"})
    assert table.exit_code == 0 and REPO in table.stdout


def test_download_for_people_says_where_it_went(hub):
    result = runner.invoke(app, ["models", "download", REPO, "--revision", "main"])
    assert result.exit_code == 0, result.output
    assert f"Downloaded {REPO}" in result.stdout and str(hf_cache_snapshot(REPO)) in result.stdout


def test_a_refusal_is_a_plain_message_and_allow_remote_code_is_said_on_screen(hub, tiny_model_dir, tmp_path):
    custom = model_folder(tiny_model_dir, tmp_path / "custom", extra={"modeling_x.py": b"pass\n"},
                          config={"auto_map": {"AutoModelForCausalLM": "modeling_x.X"}})
    hub.add_repo("owner/custom", custom)
    refused = runner.invoke(app, ["models", "download", "owner/custom"])
    assert refused.exit_code == 1 and "needs its own Python code" in refused.output
    assert "Traceback" not in refused.output and hf_cache_snapshot("owner/custom") is None
    allowed = runner.invoke(app, ["models", "download", "owner/custom", "--allow-remote-code"])
    assert allowed.exit_code == 0, allowed.output
    assert "Remote code is allowed" in allowed.output


def test_a_gated_model_tells_how_to_give_a_token(hub, tiny_model_dir, tmp_path):
    hub.add_repo("owner/gated", model_folder(tiny_model_dir, tmp_path / "gated"), gated=True)
    result = runner.invoke(app, ["models", "download", "owner/gated", "--json"])
    assert result.exit_code == 1 and result.stdout == ""
    assert "needs a Hugging Face token" in result.output and "studio hub-login" in result.output


def test_ctrl_c_cancels_cleanly(hub):
    hub.chunk_delay_s = 0.02
    sent = [0]

    def interrupt_once_downloading(n_bytes: int) -> None:
        sent[0] += n_bytes
        if sent[0] > 1_000_000 and sent[0] - n_bytes <= 1_000_000:  # well past config.json, read beforehand
            os.kill(os.getpid(), signal.SIGINT)

    hub.on_sent = interrupt_once_downloading
    result = runner.invoke(app, ["models", "download", REPO])
    assert result.exit_code == 130, result.output
    assert "The download was cancelled" in result.output and "Traceback" not in result.output
    assert hf_cache_snapshot(REPO) is None and wait_until(downloads_finished)
