"""Energy, cost and CO2 from the planner's time and power, with ranges; settings from the locale or the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.engine.energy import (
    COUNTRIES,
    WORLD,
    EnergySettings,
    country_of,
    default_settings,
    energy_text,
    load_settings,
    locale_country,
    measured_footprint,
    planned_footprint,
    save_settings,
)
from studio.engine.planner import Interval

EUR = EnergySettings(price_per_kwh=0.40, currency="EUR", grid_g_per_kwh=381.0, country="DE")


def test_planned_footprint_multiplies_time_and_power_uncertainty() -> None:
    one_hour = Interval(1800.0, 3600.0, 7200.0)
    footprint = planned_footprint(one_hour, 100.0, "cpu", EUR)
    energy = footprint.energy_kwh
    assert energy.expected == pytest.approx(0.1)  # 100 W for an hour
    assert energy.low == pytest.approx(0.05 * 0.5)  # half the time at half the power
    assert energy.high == pytest.approx(0.2 * 1.5)
    assert footprint.cost.expected == pytest.approx(0.04)
    assert footprint.cost.low < footprint.cost.expected < footprint.cost.high
    assert footprint.co2_g.expected == pytest.approx(38.1)
    gpu = planned_footprint(one_hour, 100.0, "cuda", EUR).energy_kwh
    assert gpu.high < energy.high  # a GPU's limit is a ceiling; a CPU's figure a guess


def test_cost_is_free_only_at_a_zero_price() -> None:
    footprint = planned_footprint(Interval(60, 600, 1200), 50.0, "cpu", EUR)
    assert footprint.cost.expected > 0 and not EUR.free
    zero = EnergySettings(0.0, "EUR", 381.0)
    assert zero.free and planned_footprint(Interval(60, 600, 1200), 50.0, "cpu", zero).cost.high == 0.0


def test_measured_footprint_has_a_range_only_when_estimated() -> None:
    exact = measured_footprint(0.5, EUR)
    assert exact.energy_kwh.low == exact.energy_kwh.high == 0.5 and exact.cost.expected == pytest.approx(0.2)
    guessed = measured_footprint(0.5, EUR, spread=0.5)
    assert guessed.energy_kwh.low == pytest.approx(0.25) and guessed.energy_kwh.high == pytest.approx(0.75)


def test_small_amounts_keep_their_digits() -> None:
    assert EUR.money(0.0046) == "€0.0046"
    assert EUR.money(0.046) == "€0.046"
    assert EUR.money(1.2) == "€1.20"
    assert EnergySettings(1.8, "SEK", 41.0).money(2.5) == "2.50 SEK"
    assert energy_text(0.0123) == "12 Wh" and energy_text(2.5) == "2.50 kWh" and energy_text(0.0004) == "0.4 Wh"
    assert energy_text(0.00004) == "0.04 Wh"


def test_defaults_come_from_the_locale_country() -> None:
    assert country_of("de_DE.UTF-8") == "DE" and country_of("en-GB") == "GB" and country_of("C") == ""
    assert locale_country({"LANG": "fr_FR.UTF-8"}) == "FR"
    assert locale_country({"LC_ALL": "sv_SE.UTF-8", "LANG": "en_US.UTF-8"}) == "SE"
    assert locale_country({"LANG": "C.UTF-8"}) == ""
    france = default_settings("FR")
    assert (france.grid_g_per_kwh, france.price_per_kwh, france.currency) == COUNTRIES["FR"]
    unknown = default_settings("")
    assert (unknown.grid_g_per_kwh, unknown.price_per_kwh, unknown.currency) == WORLD and unknown.country == ""


def test_settings_round_trip_and_a_damaged_file_falls_back(tmp_path: Path) -> None:
    path = tmp_path / "energy.json"
    assert load_settings(path, country="DE") == default_settings("DE")
    save_settings(EnergySettings(0.31, "EUR", 120.0, "DE"), path)
    assert load_settings(path) == EnergySettings(0.31, "EUR", 120.0, "DE")
    path.write_text(json.dumps({"price_per_kwh": -1, "currency": "EUR", "grid_g_per_kwh": 1}), encoding="utf-8")
    assert load_settings(path, country="GB") == default_settings("GB")
    path.write_text("{not json", encoding="utf-8")
    assert load_settings(path, country="GB") == default_settings("GB")
