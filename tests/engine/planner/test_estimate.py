"""estimate(): memory, time, cost and carbon for a fixed config; fast and monotonic in the right directions."""

from __future__ import annotations

import time

import pytest

from studio.engine.config import TrainConfig
from studio.engine.planner import DatasetStats, estimate
from studio.engine.planner.devices import gpu_speed, peak_gflops, power_w
from studio.engine.planner.duration import padding_factor
from studio.engine.planner.memory import adapter_params, memory_budget_mb, peak_memory
from studio.engine.planner.rules import nice_steps

STATS = DatasetStats(n_examples=1000, p50_tokens=200, p90_tokens=400, p99_tokens=600, max_tokens=900,
                     total_tokens=230_000)
BASE = TrainConfig(micro_batch_size=4, gradient_accumulation=4, max_length=512)


def test_memory_grows_with_batch_and_length_and_shrinks_with_checkpointing(make_machine, smollm):
    cpu = make_machine("cpu_24gb")

    def need(**changes):
        return estimate(BASE.updated(**changes), cpu, smollm, STATS).peak_memory_mb.expected

    assert need(micro_batch_size=8) > need() > need(micro_batch_size=2)
    assert need(max_length=1024) > need() > need(max_length=256)
    assert need(gradient_checkpointing=True) < need()


def test_4bit_and_half_precision_shrink_the_weights(make_machine, make_model):
    gpu, llama = make_machine("a100_80gb"), make_model("llama-8b")
    full = peak_memory(BASE.updated(precision="fp32"), gpu, llama).weights_mb
    half = peak_memory(BASE.updated(precision="bf16"), gpu, llama).weights_mb
    nf4 = peak_memory(BASE.updated(precision="bf16", method="qlora"), gpu, llama).weights_mb
    assert half == pytest.approx(full / 2)
    assert nf4 < 0.4 * half


def test_adapter_size_matches_peft_for_the_builtin_model(smollm):
    # PEFT reports 4,884,480 trainable parameters for SmolLM2-135M with r=16 on all linear layers.
    assert adapter_params(smollm, TrainConfig(lora_r=16)) == 4_884_480
    assert adapter_params(smollm, TrainConfig(lora_r=16, target_modules=["q_proj", "v_proj"])) == 30 * 16 * (
        576 + 576 + 576 + 192)


def test_time_follows_dataset_size_epochs_and_device(make_machine, smollm):
    cpu, gpu = make_machine("cpu_24gb"), make_machine("h100_80gb")
    one = estimate(BASE.updated(num_epochs=1), cpu, smollm, STATS)
    three = estimate(BASE.updated(num_epochs=3), cpu, smollm, STATS)
    assert three.total_steps == 3 * one.total_steps
    assert three.total_time_s.expected > 2.5 * one.total_time_s.expected - 60
    fast = estimate(BASE.updated(precision="bf16"), gpu, smollm, STATS)
    assert fast.total_time_s.expected < one.total_time_s.expected / 5
    assert one.steps_per_epoch == 57  # 900 training examples / 16 per update


def test_cpu_speed_is_calibrated_to_the_measured_reference(make_machine, smollm):
    """NOTES.md: 2 cores, batch 8, length 512, r=16, length grouping: about 174 real tokens/s."""
    cpu = make_machine("cpu_24gb")
    config = BASE.updated(micro_batch_size=8, gradient_accumulation=1, group_by_length=True)
    tps = estimate(config, cpu, smollm, STATS).tokens_per_s
    assert 174 / 1.6 < tps < 174 * 1.6


def test_measured_throughput_replaces_the_guess(make_machine, smollm):
    cpu = make_machine("cpu_24gb")
    guessed = estimate(BASE, cpu, smollm, STATS)
    cpu.matmul_gflops = 2 * peak_gflops(cpu, "fp32")[0]
    measured = estimate(BASE, cpu, smollm, STATS)
    assert measured.tokens_per_s == pytest.approx(2 * guessed.tokens_per_s)
    spread = measured.total_time_s.high / measured.total_time_s.low
    assert spread < guessed.total_time_s.high / guessed.total_time_s.low


def test_padding_depends_on_grouping_and_packing():
    assert padding_factor(BASE.updated(group_by_length=False), STATS) == pytest.approx(400 / 230)
    assert padding_factor(BASE, STATS) < padding_factor(BASE.updated(group_by_length=False), STATS)
    assert padding_factor(BASE.updated(packing=True), STATS) == 1.0


def test_cost_is_absent_without_a_price_and_carbon_uses_the_device_power(make_machine, smollm):
    gpu = make_machine("rtx4090_24gb")
    est = estimate(BASE.updated(precision="bf16"), gpu, smollm, STATS, grid_g_per_kwh=500)
    assert est.cost is None
    assert est.power_w == pytest.approx(450 * 0.8 + 60)
    kwh = est.total_time_s.expected / 3600 * est.power_w / 1000
    assert est.carbon_g.expected == pytest.approx(kwh * 500)


def test_known_gpus_and_budgets(make_machine):
    assert gpu_speed("NVIDIA H100 PCIe").half_tflops == 756
    assert gpu_speed("NVIDIA H100 80GB HBM3").half_tflops == 989
    assert not gpu_speed("Some Future GPU").known
    assert memory_budget_mb(make_machine("rtx3060_12gb")) == pytest.approx(0.95 * (12 * 1024 - 400))
    mac = make_machine("mac_mps_16gb")
    assert memory_budget_mb(mac) <= 0.7 * mac.ram_total_mb
    assert power_w(make_machine("cpu_8gb")) < power_w(make_machine("t4_16gb"))


def test_estimate_is_fast_enough_for_live_updates(make_machine, smollm):
    cpu = make_machine("cpu_24gb")
    start = time.perf_counter()
    for size in range(1, 101):
        estimate(BASE.updated(micro_batch_size=size % 8 + 1), cpu, smollm, STATS)
    assert (time.perf_counter() - start) / 100 < 0.01


@pytest.mark.parametrize(("value", "expected"), [(0.3, 1), (1, 1), (7, 10), (12, 10), (13, 20), (30, 25),
                                                 (40, 50), (180, 200), (900, 1000)])
def test_nice_steps(value, expected):
    assert nice_steps(value) == expected


def test_data_parallel_processes_share_the_epoch(make_machine, make_model):
    gpu, llama = make_machine("h100_80gb"), make_model("llama-1b")
    one = estimate(BASE.updated(precision="bf16"), gpu, llama, STATS)
    two = estimate(BASE.updated(precision="bf16", num_processes=2), gpu, llama, STATS)
    assert two.time_per_epoch_s.expected == pytest.approx(one.time_per_epoch_s.expected / 2, rel=0.05)


def test_dpo_needs_more_memory_than_sft_and_the_breakdown_says_why(make_machine, smollm):
    """DPO runs chosen and rejected through the model (twice the sequences) and adds a reference pass."""
    cpu = make_machine("cpu_24gb")
    sft = estimate(BASE, cpu, smollm, STATS)
    dpo = estimate(BASE.updated(objective="dpo"), cpu, smollm, STATS)
    assert dpo.peak_memory_mb.expected > sft.peak_memory_mb.expected
    parts, plain = dpo.memory_breakdown_mb, sft.memory_breakdown_mb
    assert parts["weights"] == plain["weights"] and parts["adapter"] == plain["adapter"]
    assert parts["output_head"] > 1.5 * plain["output_head"]  # twice the tokens scored, fewer rows each
    assert parts["activations"] > plain["activations"]  # twice the sequences, though without adapter dropout
    assert parts["reference"] > 0 == plain["reference"]


def test_each_objective_counts_its_own_passes(make_machine, smollm):
    cpu = make_machine("cpu_24gb")

    def parts(objective):
        return peak_memory(BASE.updated(objective=objective), cpu, smollm)

    sft, dpo, orpo, kto = parts("sft"), parts("dpo"), parts("orpo"), parts("kto")
    assert orpo.activations_mb == pytest.approx(dpo.activations_mb)  # both: chosen + rejected, with gradients
    assert orpo.reference_mb == 0  # ORPO has no reference model
    assert orpo.head_mb > sft.head_mb  # unfused logits over both answers
    assert kto.activations_mb == pytest.approx(dpo.activations_mb / 2)  # one answer per example
    assert 0 < kto.reference_mb < dpo.reference_mb
    assert kto.head_mb == pytest.approx(dpo.head_mb / 2)  # the same fused head over half the tokens


def test_the_objective_changes_what_fits_on_a_small_machine(make_machine, smollm):
    from studio.engine.planner import plan
    from studio.engine.profiles import get_profile

    machine = make_machine("cpu_24gb")
    machine.ram_total_mb, machine.ram_available_mb = 16 * 1024, 13 * 1024
    layout = {"micro_batch_size": 4, "gradient_accumulation": 4, "gradient_checkpointing": False,
              "max_length": 512}
    sft = plan(machine, smollm, get_profile("chatbot"), STATS, overrides=layout)
    dpo = plan(machine, smollm, get_profile("chatbot"), STATS, overrides={**layout, "objective": "dpo"})
    assert sft.fits, sft.alternatives
    assert not dpo.fits
    assert dpo.estimates.peak_memory_mb.expected > dpo.estimates.memory_budget_mb
    assert any("does not fit" in warning for warning in dpo.warnings)
    assert any("Shorten max length" in option for option in dpo.alternatives)
    assert any("Free memory" in option for option in dpo.alternatives)
