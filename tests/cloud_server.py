"""A fake RunPod API on 127.0.0.1 that answers the GraphQL the `runpod` SDK sends.

    POST /graphql   query GpuTypes { gpuTypes { id displayName memoryInGb } }            runpod.get_gpus()
                    query GpuTypes { gpuTypes(input: {id: "..."}) { ...prices... } }   runpod.get_gpu(id)

Answers are shaped like RunPod's GraphQL API (docs.runpod.io, "Manage Pods"; the SDK's own queries in
runpod/api/queries/gpus.py): `{"data": {"gpuTypes": [...]}}`, 401 for a key it does not know, and
`{"errors": [{"message": ...}]}` for a query it cannot answer. Every query is logged in `queries`.
`fake_runpod(monkeypatch)` serves it and points the SDK at it (RUNPOD_API_BASE_URL, read on every call).
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.hub_server import MemoryKeyring
from tests.local_http import JsonHandler, serving, url_of

GOOD_KEY = "rpa_test_key"


@dataclass
class FakeGpu:
    id: str
    display: str
    vram_gb: int
    secure: float | None  # on-demand price per hour in secure cloud (None: not offered there)
    community: float | None
    secure_spot: float | None = None
    community_spot: float | None = None

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "displayName": self.display, "memoryInGb": self.vram_gb}

    def detail(self) -> dict[str, Any]:
        return {
            **self.summary(), "maxGpuCount": 8, "manufacturer": "Nvidia", "cudaCores": 0,
            "secureCloud": self.secure is not None, "communityCloud": self.community is not None,
            "securePrice": self.secure, "communityPrice": self.community, "secureSpotPrice": self.secure_spot,
            "communitySpotPrice": self.community_spot, "oneMonthPrice": None, "threeMonthPrice": None,
            "oneWeekPrice": None, "lowestPrice": {"minimumBidPrice": self.community_spot,
                                                  "uninterruptablePrice": self.community or self.secure},
        }


# A few of RunPod's GPU types, with prices of the kind its console lists.
CATALOG = [
    FakeGpu("NVIDIA GeForce RTX 3070", "RTX 3070", 8, None, 0.13, community_spot=0.07),
    FakeGpu("NVIDIA GeForce RTX 4090", "RTX 4090", 24, 0.69, 0.34, community_spot=0.20),
    FakeGpu("NVIDIA RTX A6000", "RTX A6000", 48, 0.76, 0.33, secure_spot=0.49),
    FakeGpu("NVIDIA A100 80GB PCIe", "A100 PCIe", 80, 1.64, 1.19, secure_spot=0.82),
]


@dataclass
class FakeRunPod:
    gpus: list[FakeGpu] = field(default_factory=lambda: list(CATALOG))
    key: str = GOOD_KEY
    queries: list[str] = field(default_factory=list)
    url: str = ""
    gone: set[str] = field(default_factory=set)  # listed, but rented out before its prices are asked

    def answer(self, query: str) -> dict[str, Any]:
        one = re.search(r'gpuTypes\(input: \{id: "([^"]+)"\}\)', query)
        if one:
            found = [gpu.detail() for gpu in self.gpus if gpu.id == one.group(1) and gpu.id not in self.gone]
            return {"data": {"gpuTypes": found}}
        if "gpuTypes" in query:
            return {"data": {"gpuTypes": [gpu.summary() for gpu in self.gpus]}}
        return {"errors": [{"message": "This fake answers only gpuTypes queries."}]}


def graphql_handler(api: FakeRunPod) -> type[JsonHandler]:
    """RunPod's GraphQL endpoint for `api`; the pods fake extends it with the pods' proxy."""

    class Handler(JsonHandler):
        def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
            body = self.read_json()
            api.queries.append(body.get("query", ""))
            if self.path != "/graphql":
                self.send_json(404, {"errors": [{"message": "Not found"}]})
            elif self.headers.get("Authorization") != f"Bearer {api.key}":
                self.send_json(401, {"error": "Unauthorized"})
            else:
                self.send_json(200, api.answer(body.get("query", "")))

    return Handler


@contextmanager
def fake_runpod(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRunPod]:
    """The fake, serving on a free port, with the SDK pointed at it and an in-memory keyring holding no key."""
    api = FakeRunPod()
    with serving(graphql_handler(api)) as server:
        api.url = url_of(server)
        monkeypatch.setenv("RUNPOD_API_BASE_URL", api.url)
        monkeypatch.setattr("keyring.core._keyring_backend", MemoryKeyring())
        yield api


def closed_port_url() -> str:
    """A 127.0.0.1 address where nothing listens: a provider that cannot be reached."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# Shapes of Llama 3.1 8B and 70B, as in their config.json files.
LLAMA_8B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 32,
    "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256,
    "max_position_embeddings": 131072, "tie_word_embeddings": False, "dtype": "bfloat16",
}
LLAMA_70B = {**LLAMA_8B, "hidden_size": 8192, "num_hidden_layers": 80, "num_attention_heads": 64,
             "intermediate_size": 28672}
