"""Estimates for one fixed config: memory, time, cost and carbon, each with an interval.

Fast, so the wizard can call it on every change of a setting. The time comes from the planner's model of
the device, or, once a run of the same model has been measured on this machine, from that measurement
(planner/calibration.py; the store is read again only when it changed).
"""

from __future__ import annotations

from studio.engine.config import TrainConfig
from studio.engine.hardware import HardwareProfile
from studio.engine.models.facts import ModelFacts
from studio.engine.planner.calibration import EVAL_COST, CalibrationStore, Measurement, default_store
from studio.engine.planner.devices import power_w
from studio.engine.planner.duration import (
    Throughput,
    flops_per_token,
    mean_tokens,
    padding_factor,
    startup_s,
    steps_per_epoch,
    throughput,
)
from studio.engine.planner.memory import memory_budget_mb, peak_memory
from studio.engine.planner.types import DatasetStats, Estimates, Interval

# Memory: calibrated on CPU within about 10%; GPUs add allocator behaviour we did not measure.
MEMORY_SPREAD = {"cpu": (0.85, 1.15), "mps": (0.8, 1.3), "cuda": (0.85, 1.25)}
# Time: a measured or known device is good to within tens of percent; a guessed one much less so.
TIME_SPREAD_KNOWN = (0.7, 1.5)
TIME_SPREAD_GUESSED = (0.4, 2.5)
# Measured on this machine before: other programs and other data still move it.
TIME_SPREAD_MEASURED = (0.8, 1.3)
# Without a dataset, time is shown for a dataset of this many examples.
ASSUMED_EXAMPLES = 1000


def estimate(
    config: TrainConfig,
    hardware: HardwareProfile,
    model: ModelFacts,
    dataset_stats: DatasetStats | None,
    *,
    hourly_price: float | None = None,
    grid_g_per_kwh: float = 400.0,
    calibration: CalibrationStore | None = None,
) -> Estimates:
    """`calibration`: past runs' measurements (the data folder's store when None)."""
    device = hardware.device
    memory = peak_memory(config, hardware, model)
    low_m, high_m = MEMORY_SPREAD[device]

    measured = (calibration or default_store()).lookup(hardware, calibration_fields(config))
    speed = (measured_throughput(config, model, dataset_stats, measured) if measured is not None
             else throughput(config, hardware, model, dataset_stats))
    n_examples = dataset_stats.n_examples if dataset_stats else ASSUMED_EXAMPLES
    per_epoch_steps = steps_per_epoch(config, n_examples)
    epoch_s = per_epoch_steps * speed.seconds_per_step
    total_steps = config.max_steps or max(1, round(per_epoch_steps * config.num_epochs))
    train_s = total_steps * speed.seconds_per_step
    eval_examples = n_examples * config.eval_fraction
    n_evals = total_steps // config.eval_every_steps if config.eval_every_steps else 0
    eval_s = n_evals * eval_examples * mean_tokens(config, dataset_stats) * EVAL_COST / speed.real_tokens_per_s
    start_s = measured.startup_s if measured is not None and measured.startup_s is not None else startup_s(model)
    finish_s = measured.finish_s if measured is not None and measured.finish_s is not None else 0.0
    total_s = train_s + eval_s + start_s + finish_s

    low_t, high_t = (TIME_SPREAD_MEASURED if measured is not None
                     else TIME_SPREAD_KNOWN if speed.known_device else TIME_SPREAD_GUESSED)
    total = Interval.around(total_s, low_t, high_t)
    watts = power_w(hardware)
    energy_kwh = total.scaled(watts / 3600.0 / 1000.0)
    return Estimates(
        peak_memory_mb=Interval.around(memory.total_mb, low_m, high_m),
        time_per_epoch_s=Interval.around(epoch_s, low_t, high_t),
        total_time_s=total,
        cost=total.scaled(hourly_price / 3600.0) if hourly_price is not None else None,
        carbon_g=energy_kwh.scaled(grid_g_per_kwh),
        memory_budget_mb=memory_budget_mb(hardware),
        tokens_per_s=speed.real_tokens_per_s,
        steps_per_epoch=per_epoch_steps,
        total_steps=total_steps,
        seconds_per_step=speed.seconds_per_step,
        power_w=watts,
        memory_breakdown_mb=memory.to_dict(),
    )


def calibration_fields(config: TrainConfig) -> dict[str, object]:
    """The settings a measured speed is kept under (see calibration.config_key)."""
    return {"base_model": config.base_model, "precision": config.precision, "quantization": config.quantization,
            "gradient_checkpointing": config.gradient_checkpointing}


def measured_throughput(config: TrainConfig, model: ModelFacts, stats: DatasetStats | None,
                        measured: Measurement) -> Throughput:
    """A past run's speed on this machine, moved to this config's sequence length by the FLOPs model
    (longer examples cost more per token through attention)."""
    pad = padding_factor(config, stats)
    now_tokens = mean_tokens(config, stats)
    then = flops_per_token(config, model, measured.tokens_per_example * pad)
    now = flops_per_token(config, model, now_tokens * pad)
    real_tps = 1.0 / (measured.seconds_per_token * now / then)
    tokens_per_step = config.micro_batch_size * config.gradient_accumulation * now_tokens
    return Throughput(real_tps, tokens_per_step / real_tps, True)
