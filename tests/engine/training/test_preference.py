"""Preference tuning (DPO, ORPO, KTO) through the real worker on the tiny model, with TRL's own trainers and a
LoRA adapter: finite losses, reloadable adapters, reward accuracy that rises on a learnable rule, release and
resume, export, and the reference model taken from the model itself (no second copy of the base)."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from studio.engine.config import TrainConfig
from studio.engine.errors import StudioError
from studio.engine.events import Event
from studio.engine.runs.folders import create_run_dir, final_adapter_dir
from studio.engine.training import checkpoints
from studio.engine.training.supervisor import Supervisor
from tests.engine.training.worker_runs import losses, read_events, run_worker_process

SETTINGS = {
    "micro_batch_size": 4, "gradient_accumulation": 1, "learning_rate": 5e-3, "lora_r": 8, "lora_alpha": 16,
    "lora_dropout": 0.0, "warmup_ratio": 0.0, "lr_scheduler": "constant", "max_length": 64, "eval_fraction": 0.0,
    "seed": 7,
}


def write_pairs(path: Path, rows: int = 40) -> Path:
    """Sums whose chosen answer follows a visible rule (Pip gives the right sum, cheerfully) and whose
    rejected answer does not (a wrong number, said flatly)."""
    rng = random.Random(0)
    lines = []
    for _ in range(rows):
        a, b = rng.randint(1, 30), rng.randint(1, 30)
        lines.append({"prompt": f"What is {a} plus {b}?", "chosen": f"Pip here! {a} plus {b} makes {a + b}.",
                      "rejected": f"It is {a * b + 3}."})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def write_labeled(path: Path, rows: int = 40) -> Path:
    """KTO's layout: the same answers one at a time, each marked good (true) or bad (false)."""
    pairs = [json.loads(line) for line in write_pairs(path, rows // 2).read_text().splitlines()]
    lines = [{"prompt": p["prompt"], "completion": p[side], "label": side == "chosen"}
             for p in pairs for side in ("chosen", "rejected")]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def config_for(model: Path, data: Path, objective: str, **overrides: object) -> TrainConfig:
    return TrainConfig.from_dict({**SETTINGS, "base_model": str(model), "dataset_path": str(data),
                                  "objective": objective, **overrides})


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("preference")
    return {"root": root, "pairs": write_pairs(root / "pairs.jsonl"), "labeled": write_labeled(root / "kto.jsonl")}


@pytest.fixture(scope="module")
def trained(data: dict[str, Path], tiny_model_dir: Path) -> Callable[[str], Path]:
    """trained(objective) -> the run directory of a finished 3-step run (each objective run once)."""
    runs: dict[str, Path] = {}

    def _run(objective: str) -> Path:
        if objective not in runs:
            source = data["labeled"] if objective == "kto" else data["pairs"]
            config = config_for(tiny_model_dir, source, objective, max_steps=3, checkpoint_every_steps=3)
            run_dir = create_run_dir(config, objective, root=data["root"])
            result = run_worker_process(run_dir)
            assert result.returncode == 0, result.stderr[-3000:]
            runs[objective] = run_dir
        return runs[objective]

    return _run


@pytest.mark.slow
@pytest.mark.parametrize("objective", ["dpo", "orpo", "kto"])
def test_objective_trains_a_few_steps_and_its_adapter_reloads_with_peft(
    objective: str, trained: Callable[[str], Path], tiny_model_dir: Path
) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    run_dir = trained(objective)
    events = read_events(run_dir)
    assert events[-1]["event"] == "completed", events[-1]
    assert [e["config"]["objective"] for e in events if e["event"] == "started"] == [objective]
    step_losses = losses(events)
    assert sorted(step_losses) == [1, 2, 3] and all(math.isfinite(loss) for loss in step_losses.values())
    progress = [e for e in events if e["event"] == "progress"]
    if objective == "kto":  # single answers: no pairs to compare
        assert all(e["reward_accuracy"] is None for e in progress)
    else:
        assert all(0.0 <= e["reward_accuracy"] <= 1.0 and math.isfinite(e["reward_margin"]) for e in progress)

    adapter_dir = final_adapter_dir(run_dir)
    assert not (adapter_dir / "ref").exists()  # TRL's reference copy (if any) is never saved as the result
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    reloaded = PeftModel.from_pretrained(base, str(adapter_dir))
    assert list(reloaded.peft_config) == ["default"]
    ids = torch.tensor([[1, 42, 7, 99, 3]])
    with torch.no_grad():
        logits = reloaded(input_ids=ids).logits
        with reloaded.disable_adapter():
            base_logits = reloaded(input_ids=ids).logits
    assert torch.isfinite(logits).all() and not torch.allclose(logits, base_logits)


@pytest.fixture(scope="module")
def dpo_reference(data: dict[str, Path], tiny_model_dir: Path) -> Path:
    """An uninterrupted 10-step DPO run: the curve that the released-and-resumed run must reproduce."""
    config = config_for(tiny_model_dir, data["pairs"], "dpo", max_steps=10, checkpoint_every_steps=5)
    run_dir = create_run_dir(config, "dpo-reference", root=data["root"])
    result = run_worker_process(run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


@pytest.mark.slow
def test_dpo_reward_accuracy_rises_above_chance_on_a_visible_rule(dpo_reference: Path) -> None:
    progress = [e for e in read_events(dpo_reference) if e["event"] == "progress"]
    assert [e["step"] for e in progress] == list(range(1, 11))
    # Step 1 is measured before any update: the model is its reference, no pair is favoured yet.
    assert progress[0]["reward_margin"] == pytest.approx(0.0, abs=1e-4)
    assert progress[0]["reward_accuracy"] <= 0.5
    late = progress[-4:]
    assert sum(e["reward_accuracy"] for e in late) / len(late) > 0.5
    assert min(e["reward_margin"] for e in late) > 0.0
    assert progress[-1]["loss"] < progress[0]["loss"]  # DPO's loss starts at ln 2 and falls as margins grow


@pytest.mark.slow
def test_a_released_dpo_run_resumes_in_a_new_process_and_continues_the_curve(
    data: dict[str, Path], tiny_model_dir: Path, dpo_reference: Path
) -> None:
    config = config_for(tiny_model_dir, data["pairs"], "dpo", max_steps=10, checkpoint_every_steps=5)
    run_dir = create_run_dir(config, "dpo-released", root=data["root"])

    def release_at_3(sup: Supervisor, event: Event) -> None:
        if event.kind == "progress" and getattr(event, "step", 0) == 3:
            sup.pause_release()

    first = supervise(run_dir, release_at_3)
    assert first.exit_code == 0 and first.status == "paused"
    released = read_events(run_dir)[-1]
    assert released["event"] == "paused" and released["released"] is True
    assert checkpoints.latest_good(run_dir).step == released["step"]
    second = supervise(run_dir)
    assert second.exit_code == 0 and second.status == "completed"
    records = read_events(run_dir)
    assert [s["resumed_from_step"] for s in records if s["event"] == "started"] == [None, released["step"]]
    resumed, expected = losses(records), losses(read_events(dpo_reference))
    assert sorted(resumed) == list(range(1, 11))
    for step, loss in resumed.items():
        assert loss == pytest.approx(expected[step], abs=5e-3), f"step {step}"


def supervise(run_dir: Path, react: Callable[[Supervisor, Event], None] | None = None) -> object:
    holder: dict[str, Supervisor] = {}

    def on_event(event: Event) -> None:
        if react is not None:
            react(holder["sup"], event)

    sup = Supervisor(run_dir, on_event=on_event, env={"OMP_NUM_THREADS": "2"})
    holder["sup"] = sup
    sup.start()
    return sup.wait(timeout=300)


@pytest.mark.slow
def test_a_dpo_run_exports_as_an_adapter_that_loads_on_the_base(
    trained: Callable[[str], Path], tiny_model_dir: Path, tmp_path: Path
) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from studio.engine.export.pipeline import export_run

    result = export_run(trained("dpo"), "adapter", out_dir=tmp_path / "exported")
    assert result.ok, result
    out = tmp_path / "exported"
    assert (out / "adapter_model.safetensors").is_file() and (out / "README.md").is_file()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    reloaded = PeftModel.from_pretrained(base, str(out))
    trained_weights = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32),
        str(final_adapter_dir(trained("dpo"))),
    )
    ids = torch.tensor([[1, 42, 7, 99, 3]])
    with torch.no_grad():
        assert torch.equal(reloaded(input_ids=ids).logits, trained_weights(input_ids=ids).logits)


# ---- the reference model, in process -------------------------------------------------------------------

def _trainer(config: TrainConfig, model_path: Path, tmp_path: Path) -> object:
    from studio.engine.training.backends.hf import HFBackend, build_preference_trainer
    from studio.engine.training.setup import load_training_data

    backend = HFBackend()
    model, tokenizer = backend.load(config, model_path)
    train, _ = load_training_data(config, model_path, tokenizer)
    return build_preference_trainer(
        backend.apply_adapter(model, config), tokenizer, train, None, config, tmp_path / "staging", []
    )


def _base_parameters(model: object) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if "lora_" not in name)  # type: ignore[attr-defined]


def test_a_fresh_dpo_adapter_is_judged_against_the_base_with_the_adapter_disabled(
    data: dict[str, Path], tiny_model_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForCausalLM

    trainer: object = _trainer(config_for(tiny_model_dir, data["pairs"], "dpo", max_steps=1), tiny_model_dir, tmp_path)
    assert trainer.ref_model is None  # type: ignore[attr-defined]
    assert list(trainer.model.peft_config) == ["default"]  # type: ignore[attr-defined]
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert _base_parameters(trainer.model) == sum(p.numel() for p in base.parameters())  # one base, not two


def sft_version(model_path: Path, folder: Path) -> Path:
    """An adapter that changes the model, as a trained SFT version does."""
    import torch
    from transformers import AutoModelForCausalLM

    from studio.engine.training.backends.hf import new_adapter, save_adapter

    torch.manual_seed(3)
    sft = new_adapter(AutoModelForCausalLM.from_pretrained(model_path), TrainConfig(lora_r=8, lora_alpha=16))
    with torch.no_grad():
        for name, param in sft.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, 0.05)
    save_adapter(sft, folder)
    return folder


def test_dpo_continued_from_an_sft_version_is_judged_against_that_version(
    data: dict[str, Path], tiny_model_dir: Path, tmp_path: Path
) -> None:
    import torch

    sft = sft_version(tiny_model_dir, tmp_path / "sft")
    config = config_for(tiny_model_dir, data["pairs"], "dpo", max_steps=1, init_adapter=str(sft))
    trainer: object = _trainer(config, tiny_model_dir, tmp_path)
    model = trainer.model  # type: ignore[attr-defined]
    assert trainer.ref_model is None and sorted(model.peft_config) == ["default", "ref"]  # type: ignore[attr-defined]
    params = dict(model.named_parameters())
    reference = {name: p for name, p in params.items() if ".ref." in name}
    assert reference and all(not p.requires_grad for p in reference.values())
    for name, value in reference.items():  # the frozen reference is the SFT version the run starts from
        assert torch.equal(value, params[name.replace(".ref.", ".default.")])


@pytest.mark.slow
def test_a_dpo_run_continues_from_an_sft_version_and_saves_only_its_own_adapter(
    data: dict[str, Path], tiny_model_dir: Path
) -> None:
    from safetensors.torch import load_file

    sft = sft_version(tiny_model_dir, data["root"] / "sft-version")
    config = config_for(tiny_model_dir, data["pairs"], "dpo", max_steps=2, checkpoint_every_steps=2,
                        init_adapter=str(sft))
    run_dir = create_run_dir(config, "dpo-after-sft", root=data["root"])
    result = run_worker_process(run_dir)
    assert result.returncode == 0, result.stderr[-3000:]
    progress = [e for e in read_events(run_dir) if e["event"] == "progress"]
    # Before the first update the model is exactly its reference, the SFT version (judged against the bare
    # base, the changed model would already show a margin).
    assert progress[0]["reward_margin"] == pytest.approx(0.0, abs=1e-4)
    adapter = final_adapter_dir(run_dir)
    assert not (adapter / "ref").exists()
    assert load_file(str(adapter / "adapter_model.safetensors")).keys() == load_file(
        str(sft / "adapter_model.safetensors")).keys()


def test_data_that_does_not_suit_the_objective_is_refused_in_plain_words(
    data: dict[str, Path], tiny_model_dir: Path
) -> None:
    from transformers import AutoTokenizer

    from studio.engine.training.setup import load_training_data

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    with pytest.raises(StudioError) as refused:
        load_training_data(config_for(tiny_model_dir, data["labeled"], "dpo"), tiny_model_dir, tokenizer)
    assert refused.value.code == "objective_mismatch" and "--objective kto" in refused.value.actions[0]
    with pytest.raises(StudioError) as sft:
        load_training_data(config_for(tiny_model_dir, data["pairs"], "sft"), tiny_model_dir, tokenizer)
    assert sft.value.code == "objective_mismatch" and "preference pairs" in sft.value.why
    # KTO also learns from pairs: each pair becomes one good and one bad answer (TRL's unpairing)
    train, _ = load_training_data(config_for(tiny_model_dir, data["pairs"], "kto"), tiny_model_dir, tokenizer)
    pairs, _ = load_training_data(config_for(tiny_model_dir, data["pairs"], "dpo"), tiny_model_dir, tokenizer)
    assert set(train.column_names) == {"prompt", "completion", "label"}
    assert sum(train["label"]) * 2 == len(train) == 2 * len(pairs) > 0
