"""RAPL package power read from a sysfs tree laid out as the kernel lays it out, wrap-around included."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from studio.engine.rapl import RaplReader, energy_delta_uj, package_domains

MAX_RANGE = 262_143_328_850  # a real max_energy_range_uj


def _domain(root: Path, name: str, label: str, energy: int) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "name").write_text(f"{label}\n", encoding="ascii")
    (folder / "max_energy_range_uj").write_text(f"{MAX_RANGE}\n", encoding="ascii")
    (folder / "energy_uj").write_text(f"{energy}\n", encoding="ascii")
    return folder


@pytest.fixture
def powercap(tmp_path: Path) -> Path:
    root = tmp_path / "powercap"
    _domain(root, "intel-rapl:0", "package-0", 1_000_000)
    _domain(root, "intel-rapl:0:0", "core", 500_000)  # a sub-domain: counted inside its package already
    _domain(root, "intel-rapl:1", "package-1", 2_000_000)
    _domain(root, "intel-rapl-mmio:0", "package-0", 7)  # the same package through MMIO: not counted twice
    return root


def _set(root: Path, name: str, energy: int) -> None:
    (root / name / "energy_uj").write_text(f"{energy}\n", encoding="ascii")


def test_packages_only_and_power_from_two_readings(powercap: Path) -> None:
    assert [d.name for d in package_domains(powercap)] == ["package-0", "package-1"]
    reader = RaplReader(powercap)
    assert reader.available and reader.read_w(10.0) is None  # one reading is not a rate yet
    _set(powercap, "intel-rapl:0", 1_000_000 + 30_000_000)  # 30 J
    _set(powercap, "intel-rapl:1", 2_000_000 + 10_000_000)  # 10 J
    assert reader.read_w(12.0) == pytest.approx(20.0)  # 40 J in 2 s


def test_a_counter_that_wraps_around(powercap: Path) -> None:
    assert energy_delta_uj(MAX_RANGE - 1_000_000, 4_000_000, MAX_RANGE) == 5_000_000
    _set(powercap, "intel-rapl:0", MAX_RANGE - 5_000_000)
    reader = RaplReader(powercap)
    reader.read_w(0.0)
    _set(powercap, "intel-rapl:0", 5_000_000)  # wrapped: 10 J used
    assert reader.read_w(1.0) == pytest.approx(10.0)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_root_only_counters_mean_no_reading(powercap: Path) -> None:
    for name in ("intel-rapl:0", "intel-rapl:1"):
        (powercap / name / "energy_uj").chmod(0o000)  # as on Linux 5.10+ for anyone but root
    reader = RaplReader(powercap)
    assert not reader.available and reader.read_w(1.0) is None


def test_counters_that_become_unreadable_stop_the_readings(powercap: Path) -> None:
    reader = RaplReader(powercap)
    reader.read_w(0.0)
    (powercap / "intel-rapl:1" / "energy_uj").unlink()  # the domain went away (or lost its permission)
    assert reader.read_w(1.0) is None and not reader.available


def test_no_powercap_folder_at_all(tmp_path: Path) -> None:
    reader = RaplReader(tmp_path / "missing")
    assert not reader.available and reader.read_w(1.0) is None
