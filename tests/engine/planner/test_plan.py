"""plan() over a table of machines and models: precision, 4-bit fallback, batch, explanations, no-fit advice."""

from __future__ import annotations

import pytest

from studio.engine.config import TrainConfig
from studio.engine.errors import StudioError
from studio.engine.planner import DatasetStats, plan
from studio.engine.profiles import get_profile, load_profiles

CHAT = get_profile("chatbot")
STATS = DatasetStats(n_examples=1200, p50_tokens=180, p90_tokens=420, p99_tokens=700, max_tokens=1500,
                     total_tokens=260_000)
DEFAULTS = TrainConfig()


def _explained(result) -> None:
    chosen = result.config.model_dump()
    for name, value in chosen.items():
        if value != getattr(DEFAULTS, name):
            assert result.explanations.get(name), f"{name} differs from the default without an explanation"
    for name, text in result.explanations.items():
        assert name in chosen, f"explanation for unknown field {name}"
        assert len(text) > 10


def test_every_machine_plans_the_builtin_model_and_explains_every_choice(machine, smollm):
    result = plan(machine, smollm, CHAT, STATS)
    assert result.fits, result.alternatives
    _explained(result)
    assert result.config.quantization == "none"
    assert result.config.effective_batch_size == 16
    assert result.estimates.peak_memory_mb.low < result.estimates.peak_memory_mb.expected
    assert result.estimates.peak_memory_mb.expected < result.estimates.peak_memory_mb.high
    assert result.estimates.total_time_s.expected > 0
    assert result.estimates.carbon_g.expected > 0
    assert result.estimates.cost is None
    # The config part is exactly what TrainConfig.load accepts.
    assert TrainConfig.from_dict(result.to_dict()["config"]) == result.config


@pytest.mark.parametrize(("name", "expected"), [
    ("cpu_24gb", "fp32"), ("mac_mps_16gb", "fp32"), ("t4_16gb", "fp16"), ("rtx3060_12gb", "bf16"),
    ("a100_80gb", "bf16"), ("h100_80gb", "bf16"),
])
def test_precision_follows_the_device(make_machine, smollm, name, expected):
    assert plan(make_machine(name), smollm, CHAT, STATS).config.precision == expected


def test_packing_only_on_cuda(make_machine, smollm):
    assert plan(make_machine("rtx4090_24gb"), smollm, CHAT, STATS).config.packing is True
    cpu = plan(make_machine("cpu_24gb"), smollm, CHAT, STATS).config
    assert cpu.packing is False and cpu.group_by_length is True


def test_8b_needs_4bit_on_a_12gb_gpu_and_fits_in_full_precision_on_an_h100(make_machine, make_model):
    llama8b = make_model("llama-8b")
    small_gpu = plan(make_machine("rtx3060_12gb"), llama8b, CHAT, STATS)
    assert small_gpu.fits
    assert small_gpu.config.quantization == "4bit" and small_gpu.config.method == "qlora"
    assert "4-bit" in small_gpu.explanations["quantization"]
    assert any("4-bit" in warning for warning in small_gpu.warnings)
    big_gpu = plan(make_machine("h100_80gb"), llama8b, CHAT, STATS)
    assert big_gpu.fits and big_gpu.config.quantization == "none"
    assert big_gpu.estimates.total_time_s.expected < small_gpu.estimates.total_time_s.expected


def test_8b_lora_fits_a_24gb_gpu_in_bf16_with_checkpointing(make_machine, make_model):
    """torchtune measured 16.2 GiB for Llama 3.1 8B LoRA on an RTX 4090, so no 4-bit is needed there."""
    result = plan(make_machine("rtx4090_24gb"), make_model("llama-8b"), CHAT, STATS)
    assert result.fits and result.config.quantization == "none"
    assert result.config.gradient_checkpointing is True
    assert 15 * 1024 < result.estimates.peak_memory_mb.expected < 22 * 1024


def test_70b_on_a_t4_does_not_fit_and_offers_concrete_alternatives(make_machine, make_model):
    result = plan(make_machine("t4_16gb"), make_model("llama-70b"), CHAT, STATS)
    assert not result.fits
    assert result.config.quantization == "4bit"  # the leanest layout is what the plan shows
    assert any("smaller model" in option for option in result.alternatives)
    assert any("GB" in option for option in result.alternatives)
    assert any("does not fit" in warning for warning in result.warnings)


def test_8b_on_an_8gb_cpu_does_not_fit_and_points_to_a_gpu_and_a_smaller_model(make_machine, make_model):
    result = plan(make_machine("cpu_8gb"), make_model("llama-8b"), CHAT, STATS)
    assert not result.fits
    assert result.config.quantization == "none"  # no 4-bit without CUDA
    text = " ".join(result.alternatives)
    assert "NVIDIA GPU" in text and "smaller model" in text


def test_shorter_max_length_is_offered_when_it_is_what_would_fit(make_machine, make_model):
    llama1b = make_model("llama-1b")
    long_data = DatasetStats(n_examples=1200, p50_tokens=3000, p90_tokens=6000, p99_tokens=8000,
                             max_tokens=9000, total_tokens=4_000_000)
    domain = get_profile("domain")
    machine = make_machine("cpu_24gb")
    machine.ram_total_mb, machine.ram_available_mb = 16 * 1024, 13 * 1024
    result = plan(machine, llama1b, domain, long_data, overrides={"max_length": 8192})
    assert not result.fits
    assert any("Shorten max length" in option for option in result.alternatives)
    assert any("smaller model" in option for option in result.alternatives)


def test_tight_memory_lowers_the_micro_batch_but_keeps_the_effective_batch(make_machine, make_model):
    llama1b = make_model("llama-1b")
    roomy = plan(make_machine("a100_80gb"), llama1b, CHAT, STATS).config
    tight = plan(make_machine("rtx3060_12gb"), llama1b, CHAT, STATS).config
    assert tight.micro_batch_size < roomy.micro_batch_size
    assert tight.effective_batch_size == roomy.effective_batch_size == 16
    assert tight.gradient_accumulation > roomy.gradient_accumulation


def test_gradient_checkpointing_turns_on_only_when_memory_is_tight(make_machine, make_model):
    llama8b = make_model("llama-8b")
    assert plan(make_machine("rtx4090_24gb"), llama8b, CHAT, STATS).config.gradient_checkpointing is True
    assert plan(make_machine("a100_80gb"), llama8b, CHAT, STATS).config.gradient_checkpointing is False
    assert plan(make_machine("h100_80gb"), make_model("llama-1b"), CHAT, STATS).config.gradient_checkpointing \
        is False


def test_max_length_comes_from_the_data_and_is_capped(make_machine, smollm):
    cpu = make_machine("cpu_24gb")
    assert plan(cpu, smollm, CHAT, STATS).config.max_length == 704  # p99 700 rounded up to 64
    long = DatasetStats(n_examples=500, p50_tokens=900, p90_tokens=3000, p99_tokens=5000, max_tokens=9000,
                        total_tokens=600_000)
    capped = plan(cpu, smollm, CHAT, long)
    assert capped.config.max_length == CHAT.max_length_hint
    assert any("will be cut" in warning for warning in capped.warnings)


def test_small_and_large_datasets_change_epochs_batch_and_evaluation(make_machine, smollm):
    cpu = make_machine("cpu_24gb")
    tiny = DatasetStats(n_examples=40, p50_tokens=100, p90_tokens=200, p99_tokens=250, max_tokens=300,
                        total_tokens=4_500)
    small = plan(cpu, smollm, CHAT, tiny)
    assert small.config.num_epochs > CHAT.epochs
    assert small.config.effective_batch_size == 8
    assert small.config.eval_fraction == 0.0 and small.config.eval_every_steps is None
    assert any("usable examples" in warning for warning in small.warnings)
    huge = DatasetStats(n_examples=50_000, p50_tokens=100, p90_tokens=200, p99_tokens=250, max_tokens=300,
                        total_tokens=5_500_000)
    large = plan(cpu, smollm, CHAT, huge)
    assert large.config.num_epochs == 1.0
    assert large.config.eval_fraction == 0.01


def test_learning_rate_scales_with_the_effective_batch(make_machine, smollm):
    tiny = DatasetStats(n_examples=40, p50_tokens=100, p90_tokens=200, p99_tokens=250, max_tokens=300,
                        total_tokens=4_500)
    small = plan(make_machine("cpu_24gb"), smollm, CHAT, tiny).config
    assert small.learning_rate == pytest.approx(CHAT.learning_rate * (8 / 16) ** 0.5, rel=0.02)


def test_checkpoints_about_every_ten_minutes_aligned_with_evaluations(make_machine, smollm):
    big = DatasetStats(n_examples=5000, p50_tokens=180, p90_tokens=420, p99_tokens=700, max_tokens=1500,
                       total_tokens=1_100_000)
    result = plan(make_machine("cpu_24gb"), smollm, CHAT, big)
    config, est = result.config, result.estimates
    minutes = config.checkpoint_every_steps * est.seconds_per_step / 60
    assert 4 <= minutes <= 20
    assert config.checkpoint_every_steps % config.eval_every_steps == 0
    assert est.total_steps / config.eval_every_steps >= 5


def test_overrides_are_kept_and_marked_as_the_users(make_machine, smollm):
    result = plan(make_machine("cpu_24gb"), smollm, CHAT, STATS,
                  overrides={"micro_batch_size": 2, "lora_r": 8, "dataset_path": "/data/x.jsonl"})
    assert result.config.micro_batch_size == 2 and result.config.lora_r == 8
    assert result.config.gradient_accumulation == 8  # still an effective batch of 16
    assert result.explanations["lora_r"] == "You set this."
    assert result.explanations["dataset_path"] == "You set this."


def test_invalid_overrides_give_a_plain_error(make_machine, smollm):
    with pytest.raises(StudioError) as info:
        plan(make_machine("cpu_24gb"), smollm, CHAT, STATS, overrides={"lora_r": 0})
    assert "lora_r" in info.value.why


def test_cost_and_carbon_follow_price_and_grid(make_machine, smollm):
    gpu = make_machine("a100_80gb")
    cheap = plan(gpu, smollm, CHAT, STATS, hourly_price=1.0, grid_g_per_kwh=100.0).estimates
    dear = plan(gpu, smollm, CHAT, STATS, hourly_price=2.0, grid_g_per_kwh=400.0).estimates
    assert cheap.cost is not None and dear.cost is not None
    assert dear.cost.expected == pytest.approx(2 * cheap.cost.expected)
    assert dear.carbon_g.expected == pytest.approx(4 * cheap.carbon_g.expected)
    hours = cheap.total_time_s.expected / 3600
    assert cheap.cost.expected == pytest.approx(hours * 1.0)


def test_without_a_dataset_the_plan_says_what_it_assumed(make_machine, smollm):
    result = plan(make_machine("cpu_24gb"), smollm, CHAT)
    assert result.config.max_length == 512
    assert any("No dataset" in warning for warning in result.warnings)


@pytest.mark.parametrize("profile_id", list(load_profiles()))
def test_every_profile_plans_on_cpu_and_gpu(make_machine, smollm, profile_id):
    profile = get_profile(profile_id)
    for name in ("cpu_24gb", "rtx4090_24gb"):
        result = plan(make_machine(name), smollm, profile, STATS)
        assert result.fits
        assert result.config.profile == profile_id
        assert result.config.lora_r == profile.lora.r and result.config.lora_alpha == profile.lora.alpha
        _explained(result)


def test_several_gpus_train_data_parallel_and_keep_the_update_size(make_machine, make_model):
    import dataclasses

    single = make_machine("a100_80gb")
    quad = dataclasses.replace(single, gpus=[single.gpus[0]] * 4)
    llama, chat = make_model("llama-1b"), get_profile("chatbot")
    one, four = plan(single, llama, chat), plan(quad, llama, chat)
    assert one.config.num_processes == 1 and four.config.num_processes == 4
    assert four.config.effective_batch_size == one.config.effective_batch_size
    assert "accelerate launch" in four.explanations["num_processes"]
    assert four.estimates.total_time_s.expected < one.estimates.total_time_s.expected


def test_kto_never_gets_a_micro_batch_of_one(make_machine, make_model):
    """TRL's KTO compares answers within a micro-batch and refuses a batch of 1, even where memory is tight."""
    llama8b = make_model("llama-8b")
    tight = plan(make_machine("cpu_8gb"), llama8b, CHAT, STATS, overrides={"objective": "kto"})
    assert tight.config.micro_batch_size >= 2 and not tight.fits
    sft = plan(make_machine("cpu_8gb"), llama8b, CHAT, STATS)
    assert sft.config.micro_batch_size == 1  # the same machine and model give SFT the leanest batch
    roomy = plan(make_machine("a100_80gb"), make_model("llama-1b"), CHAT, STATS, overrides={"objective": "kto"})
    assert roomy.config.micro_batch_size >= 2 and roomy.fits
