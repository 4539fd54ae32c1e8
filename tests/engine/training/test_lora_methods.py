"""DoRA, rsLoRA and PiSSA really trained: each runs the real worker for 2 steps on the tiny model, reports a
finite loss, and leaves a final adapter that PEFT reloads onto the plain base model with the method in force.

A plain LoRA run with the same seed is the reference: an option that never reached PEFT would leave the same
adapter behind. PiSSA's final adapter is converted to a plain LoRA of twice the rank (the trained change
relative to the PiSSA start), so it applies to the unchanged base model like any other adapter.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.runs.folders import create_run_dir, final_adapter_dir
from tests.engine.training.worker_runs import losses, read_events, run_worker_process, write_chat_jsonl

TWO_STEPS = {"max_steps": 2, "checkpoint_every_steps": 2, "max_length": 64, "eval_fraction": 0.0, "seed": 7}
# DoRA's magnitude step recomputes the weight norm: it is run with gradient checkpointing, the memory saver
# that large DoRA runs need, so that the two are proven together.
METHOD_SETTINGS: dict[str, dict[str, object]] = {"dora": {"gradient_checkpointing": True}}


def adapter_weights(adapter_dir: Path) -> dict[str, object]:
    from safetensors.torch import load_file

    return load_file(str(adapter_dir / "adapter_model.safetensors"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Callable[..., Path]:
    """trained(method, ok=True) -> the run directory of a finished 2-step run with that method (each run once);
    ok=False expects the worker to fail."""
    root = tmp_path_factory.mktemp("methods")
    data = write_chat_jsonl(root / "chat.jsonl", rows=24)
    runs: dict[str, Path] = {}

    def _run(method: str, ok: bool = True) -> Path:
        if method not in runs:
            config = TrainConfig.from_dict({
                "base_model": str(tiny_model_dir), "dataset_path": str(data), "method": method,
                "micro_batch_size": 4, "gradient_accumulation": 1, "learning_rate": 5e-3,
                "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "warmup_ratio": 0.0,
                "lr_scheduler": "constant", **TWO_STEPS, **METHOD_SETTINGS.get(method, {}),
            })
            run_dir = create_run_dir(config, method, root=root)
            result = run_worker_process(run_dir)
            assert (result.returncode == 0) == ok, result.stderr[-3000:]
            runs[method] = run_dir
        return runs[method]

    return _run


EXPECTED_CONFIG = {
    "dora": {"use_dora": True, "use_rslora": False, "r": 8},
    "rslora": {"use_dora": False, "use_rslora": True, "r": 8},
    # PiSSA is saved converted: the trained change from the PiSSA start, as plain LoRA of rank 2r (alpha 2x).
    "pissa": {"use_dora": False, "use_rslora": False, "r": 16, "lora_alpha": 32, "init_lora_weights": True},
}


@pytest.mark.slow
@pytest.mark.parametrize("method", ["dora", "rslora", "pissa"])
def test_method_trains_two_steps_and_its_adapter_reloads_with_peft(
    method: str, trained: Callable[..., Path], tiny_model_dir: Path
) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run_dir = trained(method)
    events = read_events(run_dir)
    assert events[-1]["event"] == "completed", events[-1]
    step_losses = losses(events)
    assert step_losses and all(math.isfinite(loss) for loss in step_losses.values()), step_losses
    assert max(step_losses) == 2, step_losses

    adapter_dir = final_adapter_dir(run_dir)
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    for key, value in EXPECTED_CONFIG[method].items():
        assert config[key] == value, (key, config[key])

    weights = adapter_weights(adapter_dir)
    plain = adapter_weights(final_adapter_dir(trained("lora")))
    if method == "dora":  # DoRA's magnitude vectors exist in no other method's adapter
        assert any("lora_magnitude_vector" in name for name in weights)
    assert weights.keys() != plain.keys() or any(not torch.equal(weights[k], plain[k]) for k in plain)

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    reloaded = PeftModel.from_pretrained(base, str(adapter_dir))
    loaded_config = reloaded.peft_config["default"]
    assert (loaded_config.use_dora, loaded_config.use_rslora) == (config["use_dora"], config["use_rslora"])
    ids = torch.tensor([[1, 42, 7, 99, 3]])
    with torch.no_grad():
        logits = reloaded(input_ids=ids).logits
        with reloaded.disable_adapter():
            base_logits = reloaded(input_ids=ids).logits
    assert torch.isfinite(logits).all()
    assert not torch.allclose(logits, base_logits)  # the trained adapter changes the model


def pissa_model(tiny_model_dir: Path, seed: int = 7, global_seed: int = 0) -> object:
    """The tiny model with a fresh PiSSA adapter, made with the global random state seeded by global_seed
    (and checked to be left as it was)."""
    import torch
    from transformers import AutoModelForCausalLM

    from studio.engine.training.backends.hf import new_adapter

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    config = TrainConfig(base_model=str(tiny_model_dir), dataset_path="unused.jsonl", method="pissa", seed=seed,
                         lora_r=8, lora_alpha=16, lora_dropout=0.0)
    torch.manual_seed(global_seed)
    before = torch.get_rng_state()
    model = new_adapter(base, config)
    assert torch.equal(torch.get_rng_state(), before)  # the caller's seeding is left undisturbed
    return model


def test_a_pissa_adapter_is_saved_as_plain_lora_that_gives_the_trained_model_on_the_plain_base(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """Saved as PEFT leaves it, a PiSSA adapter reloaded onto the real base would count its start twice."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from studio.engine.training.backends.hf import save_adapter

    model = pissa_model(tiny_model_dir)
    model.eval()
    torch.manual_seed(1)
    with torch.no_grad():  # stands in for training: every adapter weight moves
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.add_(0.05 * torch.randn_like(param))
    ids = torch.tensor([[1, 42, 7, 99, 3, 250]])
    with torch.no_grad():
        trained_logits = model(input_ids=ids).logits
    save_adapter(model, tmp_path / "adapter")

    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["init_lora_weights"]) == (16, 32, True)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    reloaded = PeftModel.from_pretrained(base, str(tmp_path / "adapter"))
    with torch.no_grad():
        assert torch.allclose(reloaded(input_ids=ids).logits, trained_logits, atol=1e-4)
        assert torch.equal(model(input_ids=ids).logits, trained_logits)  # the training model is left as it was
    assert list(model.peft_config) == ["default"]


def test_pissa_starts_from_the_same_residual_base_whatever_the_random_state(tiny_model_dir: Path) -> None:
    """A resumed or retried run rebuilds the PiSSA start and loads its checkpoint onto it: the same start."""
    import torch

    first = pissa_model(tiny_model_dir, global_seed=123).state_dict()
    second = pissa_model(tiny_model_dir, global_seed=456).state_dict()
    assert first.keys() == second.keys()
    assert all(torch.equal(first[name], second[name]) for name in first)
    other_seed = pissa_model(tiny_model_dir, seed=8).state_dict()
    assert any(not torch.equal(first[name], other_seed[name]) for name in first if "lora_A" in name)


def test_qlora_in_the_worker_on_a_cpu_is_refused_before_the_model_loads(
    trained: Callable[..., Path], tmp_path: Path
) -> None:
    """QLoRA stays CUDA-only: a run started on a CPU (past the CLI's own check) ends with qlora_needs_cuda."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA, where QLoRA is allowed")
    run_dir = trained("qlora", ok=False)
    events = read_events(run_dir)
    assert [e["event"] for e in events if e["event"] in {"error", "completed", "progress"}] == ["error"], events
    error = next(e for e in events if e["event"] == "error")
    assert error["code"] == "qlora_needs_cuda" and "LoRA" in error["actions"][0]
    assert not final_adapter_dir(run_dir).exists()
