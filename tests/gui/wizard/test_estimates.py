"""Plain-language figures and the two review alternatives (pure functions, no Qt)."""

from __future__ import annotations

from studio.engine.config import TrainConfig
from studio.engine.planner import Interval
from studio.wizard.estimates import alternatives, duration, grams, interval_text, memory


def test_figures_read_naturally():
    assert duration(42) == "42 s"
    assert duration(14 * 60) == "14 min"
    assert duration(5 * 3600) == "5.0 h"
    assert memory(512) == "512 MB" and memory(5427) == "5.3 GB"
    assert grams(4.2) == "4.2 g" and grams(2500) == "2.50 kg"
    assert interval_text(Interval(300, 840, 2040), duration) == "about 14 min (5 min to 34 min)"


def test_alternatives_are_faster_and_better_and_valid():
    base = TrainConfig(num_epochs=3, lora_r=16, lora_alpha=32, max_length=1024)
    faster, better = alternatives(base)
    assert faster.title == "Faster and cheaper" and better.title == "Higher quality"
    assert faster.config.num_epochs < base.num_epochs < better.config.num_epochs
    assert faster.config.lora_r < base.lora_r < better.config.lora_r
    assert faster.config.max_length <= 512
    assert faster.config.lora_alpha == 2 * faster.config.lora_r
    for alt in (faster, better):
        assert TrainConfig.from_dict(alt.config.model_dump(mode="json")) == alt.config
        assert str(alt.config.lora_r) in alt.summary


def test_alternatives_stay_within_limits():
    tiny = TrainConfig(num_epochs=0.5, lora_r=4, lora_alpha=8, max_length=64)
    faster, better = alternatives(tiny)
    assert faster.config.lora_r >= 4 and faster.config.num_epochs >= 0.5
    huge = TrainConfig(num_epochs=90, lora_r=1024, lora_alpha=2048)
    _faster, better = alternatives(huge)
    assert better.config.num_epochs <= 100 and better.config.lora_r <= 1024


def test_cost_is_electricity_at_the_set_price_and_free_only_at_zero():
    from studio.engine.energy import EnergySettings
    from studio.engine.planner import Estimates
    from studio.wizard.estimates import FIGURES, describe

    hour = Interval(1800, 3600, 5400)
    local = Estimates(peak_memory_mb=Interval(900, 1000, 1100), time_per_epoch_s=hour, total_time_s=hour,
                      cost=None, carbon_g=Interval(1, 2, 3), power_w=100.0)
    pounds = EnergySettings(0.25, "GBP", 238.0, "GB")
    figures = describe(local, pounds)
    assert list(figures) == list(FIGURES)
    assert figures["Cost"] == "about £0.025 (£0.0062 to £0.056) at £0.25 per kWh"
    assert figures["Energy"] == "about 100 Wh (25 Wh to 225 Wh) at about 100 W"
    assert figures["Carbon"] == "about 24 g (5.9 g to 54 g) CO2 at 238 g per kWh"
    assert describe(local, EnergySettings(0.0, "GBP", 238.0))["Cost"].startswith("Free")
    assert describe(local, pounds, measured=True)["Training time"].endswith("earlier runs on this computer")
    rented = Estimates(**{**local.__dict__, "cost": Interval(1.0, 2.0, 3.0)})
    assert describe(rented, pounds)["Cost"] == "about $2.00 ($1.00 to $3.00)"
