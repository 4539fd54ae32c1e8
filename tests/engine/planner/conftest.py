"""A table of machines and models for planner tests, built by hand so every test is exact and offline."""

from __future__ import annotations

import pytest

from studio.engine.hardware import GpuInfo, HardwareProfile
from studio.engine.models.facts import ModelFacts, facts_from_config


def _cpu(ram_gb: int, cores: int = 8) -> HardwareProfile:
    return HardwareProfile(os="Linux", cpu_name="Test CPU", cpu_cores=cores, ram_total_mb=ram_gb * 1024,
                           ram_available_mb=int(ram_gb * 1024 * 0.8), disk_free_mb=200_000)


def _gpu(name: str, total_gb: int, cc: tuple[int, int], power: float, ram_gb: int = 64) -> HardwareProfile:
    gpu = GpuInfo(name=name, total_mb=total_gb * 1024, free_mb=total_gb * 1024 - 400, compute_capability=cc,
                  driver_version="550.54", cuda_version="12.4", bf16=cc >= (8, 0), power_limit_w=power)
    base = _cpu(ram_gb, cores=16)
    base.gpus = [gpu]
    base.cuda_available = True
    return base


def _mac(ram_gb: int) -> HardwareProfile:
    base = _cpu(ram_gb, cores=10)
    base.os = "Darwin 23.4"
    base.mps = True
    return base


MACHINES = {
    "cpu_8gb": lambda: _cpu(8, cores=4),
    "cpu_24gb": lambda: _cpu(24, cores=2),
    "t4_16gb": lambda: _gpu("Tesla T4", 16, (7, 5), 70.0),
    "rtx3060_12gb": lambda: _gpu("NVIDIA GeForce RTX 3060", 12, (8, 6), 170.0),
    "rtx4090_24gb": lambda: _gpu("NVIDIA GeForce RTX 4090", 24, (8, 9), 450.0),
    "a100_80gb": lambda: _gpu("NVIDIA A100-SXM4-80GB", 80, (8, 0), 400.0, ram_gb=256),
    "h100_80gb": lambda: _gpu("NVIDIA H100 80GB HBM3", 80, (9, 0), 700.0, ram_gb=256),
    "mac_mps_16gb": lambda: _mac(16),
}


def llama_config(hidden: int, layers: int, heads: int, kv_heads: int, intermediate: int, vocab: int,
                 context: int, tied: bool = False) -> dict:
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": hidden,
        "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
        "intermediate_size": intermediate, "vocab_size": vocab, "max_position_embeddings": context,
        "tie_word_embeddings": tied, "dtype": "bfloat16",
    }


# Shapes of Llama 3.2 1B, Llama 3.1 8B and Llama 3.1 70B, as in their config.json files.
LLAMA_1B = llama_config(2048, 16, 32, 8, 8192, 128256, 131072, tied=True)
LLAMA_8B = llama_config(4096, 32, 32, 8, 14336, 128256, 131072)
LLAMA_70B = llama_config(8192, 80, 64, 8, 28672, 128256, 131072)


@pytest.fixture(params=sorted(MACHINES))
def machine(request: pytest.FixtureRequest) -> HardwareProfile:
    return MACHINES[request.param]()


@pytest.fixture
def make_machine():
    return lambda name: MACHINES[name]()


LLAMAS = {"llama-1b": LLAMA_1B, "llama-8b": LLAMA_8B, "llama-70b": LLAMA_70B}


@pytest.fixture
def make_model():
    return lambda name: facts_from_config(LLAMAS[name], name=f"meta-llama/{name}", has_chat_template=True)


@pytest.fixture(scope="session")
def smollm(builtin_model_dir) -> ModelFacts:
    from studio.engine.models.facts import read_model_facts

    return read_model_facts(builtin_model_dir)
