"""The model catalog: built-in first, local models, offline-safe Hub search, and fit verdicts."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest

from studio.engine.errors import StudioError
from studio.engine.hardware import GpuInfo, HardwareProfile
from studio.engine.models.catalog import fit_verdict, list_local_models, search_hub
from studio.engine.models.facts import facts_from_config
from tests.local_http import JsonHandler, serving, url_of

LLAMA = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "num_attention_heads": 32,
         "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072}
LLAMA_8B = facts_from_config({**LLAMA, "hidden_size": 4096, "num_hidden_layers": 32, "intermediate_size": 14336},
                             name="llama-8b")
LLAMA_70B = facts_from_config({**LLAMA, "hidden_size": 8192, "num_hidden_layers": 80, "num_attention_heads": 64,
                               "intermediate_size": 28672}, name="llama-70b")
LLAMA_1B = facts_from_config({**LLAMA, "hidden_size": 2048, "num_hidden_layers": 16, "intermediate_size": 8192,
                              "tie_word_embeddings": True}, name="llama-1b")


def _machine(ram_gb: float, gpu_gb: float | None = None) -> HardwareProfile:
    gpus = [GpuInfo("NVIDIA GeForce RTX 3060", int(gpu_gb * 1024), int(gpu_gb * 1024), (8, 6), "", "", True,
                    170.0)] if gpu_gb else []
    return HardwareProfile("Linux", "cpu", 8, int(ram_gb * 1024), int(ram_gb * 1024 * 0.8), 100_000, gpus,
                           cuda_available=bool(gpus))


def test_builtin_is_listed_first_even_before_it_is_materialized(monkeypatch, tmp_path):
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(tmp_path / "empty-models"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "no-cache"))
    entries = list_local_models()
    assert entries[0].source == "builtin" and entries[0].ref == "builtin:smollm2-135m-instruct"
    assert entries[0].facts is not None and entries[0].facts.n_params == 134_515_008
    assert entries[0].path is None


def test_local_folders_and_hf_cache_are_listed_and_broken_ones_skipped(monkeypatch, tmp_path):
    import huggingface_hub.constants as hf_constants

    models = tmp_path / "models"
    (models / "mine").mkdir(parents=True)
    (models / "mine" / "config.json").write_text(json.dumps({**LLAMA, "hidden_size": 64, "num_hidden_layers": 2,
                                                             "intermediate_size": 128}))
    (models / "broken").mkdir()
    (models / "broken" / "config.json").write_text("{oops")
    (models / "not-a-model").mkdir()
    monkeypatch.setenv("STUDIO_MODELS_DIR", str(models))
    cache = tmp_path / "hub"
    snapshot = cache / "models--acme--chat" / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps({**LLAMA, "hidden_size": 128, "num_hidden_layers": 4,
                                                      "intermediate_size": 256}))
    (cache / "models--acme--chat" / "refs").mkdir()
    (cache / "models--acme--chat" / "refs" / "main").write_text("a" * 40)
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(cache))
    entries = list_local_models()
    by_ref = {entry.ref: entry for entry in entries}
    assert entries[0].source == "builtin"
    assert by_ref["acme/chat"].source == "hf_cache" and by_ref["acme/chat"].facts.hidden_size == 128
    assert by_ref[str(models / "mine")].source == "folder"
    assert not any("broken" in ref or "not-a-model" in ref for ref in by_ref)


def test_search_offline_mode_gives_a_clear_message():
    with pytest.raises(StudioError) as info:
        search_hub("llama")
    assert info.value.code == "hub_offline" and "Offline" in info.value.why
    assert len(info.value.actions) >= 2


def test_search_against_an_unreachable_endpoint_fails_fast_and_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    with socket.socket() as sock:  # a port that is certainly closed: bound, then released
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    with pytest.raises(StudioError) as info:
        search_hub("llama", timeout_s=5, endpoint=f"http://127.0.0.1:{port}")
    assert time.monotonic() - start < 6
    assert info.value.code == "hub_offline" and "could not be reached" in info.value.why


def test_search_that_hangs_times_out(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    with socket.socket() as server:  # accepts the connection but never answers
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        start = time.monotonic()
        with pytest.raises(StudioError) as info:
            search_hub("llama", timeout_s=0.5, endpoint=f"http://127.0.0.1:{server.getsockname()[1]}")
        assert time.monotonic() - start < 3
        # Answer at last, so the abandoned search ends: left retrying into a closed port, its connection
        # errors make huggingface_hub close the shared client under the next tests' downloads.
        late, _ = server.accept()
        if not late.recv(65536):  # the reachability probe, closed at once: the search's request is next
            late.close()
            late, _ = server.accept()
            late.recv(65536)
        with late:  # closed only once the search has read the answer
            late.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n[]")
            deadline = time.monotonic() + 10
            while any(t.name == "hub-search" for t in threading.enumerate()) and time.monotonic() < deadline:
                time.sleep(0.05)
    assert "did not answer" in info.value.why


@pytest.mark.parametrize(("facts", "machine", "status"), [
    (LLAMA_1B, _machine(24), "fits"),
    (LLAMA_8B, _machine(8), "does_not_fit"),
    (LLAMA_8B, _machine(32, gpu_gb=12), "fits_4bit"),
    (LLAMA_8B, _machine(64, gpu_gb=80), "fits"),
    (LLAMA_70B, _machine(64, gpu_gb=24), "does_not_fit"),
    (LLAMA_70B, _machine(64, gpu_gb=80), "fits_4bit"),
])
def test_fit_verdicts(facts, machine, status):
    verdict = fit_verdict(facts, machine)
    assert verdict.status == status
    assert "GB" in verdict.reason
    if status == "fits_4bit":
        assert "4-bit" in verdict.reason
    if status == "does_not_fit" and not machine.gpus:
        assert "NVIDIA GPU" in verdict.reason


def test_search_reads_the_hub_answer_through_the_real_client(monkeypatch):
    """A local HTTP server speaking the Hub's /api/models format stands in for huggingface.co."""
    from urllib.parse import parse_qs, urlsplit

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    answer = [
        {"id": "acme/chat-1b", "modelId": "acme/chat-1b", "downloads": 1000, "likes": 7,
         "safetensors": {"parameters": {"BF16": 1_236_000_000}, "total": 1_236_000_000},
         "cardData": {"license": "apache-2.0"}},
        {"id": "acme/mystery", "modelId": "acme/mystery", "downloads": 10, "likes": 0},
    ]
    seen: dict = {}

    class Hub(JsonHandler):
        def do_GET(self):  # noqa: N802 - the name http.server calls
            seen.update(parse_qs(urlsplit(self.path).query))
            self.send_json(200, answer)

    with serving(Hub) as server:
        entries = search_hub("chat", limit=5, endpoint=url_of(server))
    assert seen["search"] == ["chat"] and seen["pipeline_tag"] == ["text-generation"]
    assert seen["sort"] == ["downloads"]
    first, second = entries
    assert (first.ref, first.source, first.n_params, first.license, first.downloads) == (
        "acme/chat-1b", "hub", 1_236_000_000, "apache-2.0", 1000)
    assert first.facts is not None and first.facts.n_params == 1_236_000_000
    assert second.facts is None and second.n_params is None
    assert fit_verdict(first.facts, _machine(24)).status == "fits"
