"""Estimates for one fixed config: memory, time, cost and carbon, each with an interval.

Fast and pure, so the wizard can call it on every change of a setting.
"""

from __future__ import annotations

from studio.engine.config import TrainConfig
from studio.engine.hardware import HardwareProfile
from studio.engine.models.facts import ModelFacts
from studio.engine.planner.devices import power_w
from studio.engine.planner.duration import mean_tokens, startup_s, steps_per_epoch, throughput
from studio.engine.planner.memory import memory_budget_mb, peak_memory
from studio.engine.planner.types import DatasetStats, Estimates, Interval

# Memory: calibrated on CPU within about 10%; GPUs add allocator behaviour we did not measure.
MEMORY_SPREAD = {"cpu": (0.85, 1.15), "mps": (0.8, 1.3), "cuda": (0.85, 1.25)}
# Time: a measured or known device is good to within tens of percent; a guessed one much less so.
TIME_SPREAD_KNOWN = (0.7, 1.5)
TIME_SPREAD_GUESSED = (0.4, 2.5)
# Without a dataset, time is shown for a dataset of this many examples.
ASSUMED_EXAMPLES = 1000
EVAL_COST = 1.0 / 3.0  # evaluation is a forward pass only


def estimate(
    config: TrainConfig,
    hardware: HardwareProfile,
    model: ModelFacts,
    dataset_stats: DatasetStats | None,
    *,
    hourly_price: float | None = None,
    grid_g_per_kwh: float = 400.0,
) -> Estimates:
    device = hardware.device
    memory = peak_memory(config, hardware, model)
    low_m, high_m = MEMORY_SPREAD[device]

    speed = throughput(config, hardware, model, dataset_stats)
    n_examples = dataset_stats.n_examples if dataset_stats else ASSUMED_EXAMPLES
    per_epoch_steps = steps_per_epoch(config, n_examples)
    epoch_s = per_epoch_steps * speed.seconds_per_step
    total_steps = config.max_steps or max(1, round(per_epoch_steps * config.num_epochs))
    train_s = total_steps * speed.seconds_per_step
    eval_examples = n_examples * config.eval_fraction
    n_evals = total_steps // config.eval_every_steps if config.eval_every_steps else 0
    eval_s = n_evals * eval_examples * mean_tokens(config, dataset_stats) * EVAL_COST / speed.real_tokens_per_s
    total_s = train_s + eval_s + startup_s(model)

    low_t, high_t = TIME_SPREAD_KNOWN if speed.known_device else TIME_SPREAD_GUESSED
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
