"""The running energy total: measured power where the machine reports it, a labelled estimate where not."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.engine.power_meter import EnergyMeter, PowerSample, RunEnergy, cpu_tdp_w, load_run_energy, save_run_energy


def test_measured_power_integrates_to_kwh() -> None:
    meter = EnergyMeter(cpu_cores=8)
    for second in range(0, 1801, 10):  # every ten seconds for half an hour
        reading = meter.add(PowerSample(t=float(second), cpu_percent=50.0, cpu_power_w=40.0, gpu_present=True,
                                        gpu_power_w=260.0))
    assert reading.power_w == 300.0 and not reading.estimated
    assert reading.energy_kwh == pytest.approx(0.15)  # 300 W for half an hour
    assert reading.sources == "CPU measured (RAPL), GPU measured (NVML)"


def test_without_counters_the_load_gives_a_labelled_estimate() -> None:
    meter = EnergyMeter(cpu_cores=2)
    meter.add(PowerSample(t=0.0, cpu_percent=100.0))
    reading = meter.add(PowerSample(t=10.0, cpu_percent=100.0))
    assert reading.estimated and reading.power_w == cpu_tdp_w(2)
    assert reading.energy_kwh == pytest.approx(cpu_tdp_w(2) * 10 / 3.6e6)
    assert "estimated" in reading.sources
    half = meter.add(PowerSample(t=20.0, cpu_percent=50.0))
    assert half.power_w == pytest.approx(cpu_tdp_w(2) / 2) and half.energy_kwh > reading.energy_kwh


def test_a_gpu_without_a_power_sensor_is_estimated_from_its_load() -> None:
    meter = EnergyMeter(cpu_cores=4)
    reading = meter.add(PowerSample(t=0.0, cpu_percent=0.0, cpu_power_w=5.0, gpu_present=True,
                                    gpu_util_percent=50.0, gpu_power_limit_w=300.0))
    assert reading.power_w == pytest.approx(155.0) and reading.estimated


def test_a_long_gap_is_not_counted_and_a_resumed_run_keeps_its_total() -> None:
    meter = EnergyMeter(cpu_cores=4, start_kwh=1.0)
    meter.add(PowerSample(t=0.0, cpu_percent=0.0, cpu_power_w=100.0))
    assert meter.add(PowerSample(t=3600.0, cpu_percent=0.0, cpu_power_w=100.0)).energy_kwh == 1.0  # suspended


def test_the_total_is_kept_beside_the_run(tmp_path: Path) -> None:
    assert load_run_energy(tmp_path) is None
    save_run_energy(tmp_path, RunEnergy(0.25, True, "CPU estimated from its load"))
    assert load_run_energy(tmp_path) == RunEnergy(0.25, True, "CPU estimated from its load")
    (tmp_path / "energy.json").write_text("[]", encoding="utf-8")
    assert load_run_energy(tmp_path) is None
