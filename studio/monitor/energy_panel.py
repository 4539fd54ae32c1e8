"""Energy, cost and CO2 of the run so far, from the machine's own power readings or a labelled estimate.

The sampler's readings go to the engine's EnergyMeter; this panel only shows its total at the electricity
price and grid intensity set in Settings, and keeps the total in the run folder when the worker ends. A run on
a rented GPU shows instead what the machine has cost so far against its budget cap, as the cloud runner
reports it (its `cloud_cost` heartbeats): this computer's power is not what the run uses.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psutil
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel, QWidget

from studio.engine.energy import EnergySettings, energy_text, grams_text, measured_footprint
from studio.engine.power_meter import ESTIMATE_SPREAD, EnergyMeter, RunEnergy, load_run_energy, save_run_energy
from studio.gui.energy_settings import energy_settings
from studio.monitor.system_stats import SystemSample


def footprint_texts(energy: RunEnergy, settings: EnergySettings, mark_estimates: bool = True) -> dict[str, str]:
    """'Energy', 'Cost' and 'CO2' in words; an estimate gets its range, and is marked as one unless the
    caller says so once for all three (`mark_estimates` False)."""
    footprint = measured_footprint(energy.energy_kwh, settings, ESTIMATE_SPREAD if energy.estimated else 0.0)

    def shown(interval_kind: str, fmt: Callable[[float], str]) -> str:
        interval = getattr(footprint, interval_kind)
        if not energy.estimated:
            return str(fmt(interval.expected))
        mark = ", estimated" if mark_estimates else ""
        return f"about {fmt(interval.expected)} ({fmt(interval.low)} to {fmt(interval.high)}){mark}"

    cost = "Free (electricity price set to zero)" if settings.free else shown("cost", settings.money)
    return {"Energy": shown("energy_kwh", energy_text), "Cost": cost,
            "CO2": shown("co2_g", grams_text)}


class EnergyPanel(QGroupBox):
    """Power now and energy, cost and CO2 so far for the run on the dashboard."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Energy so far", parent)
        self.settings = energy_settings()
        self._cores = psutil.cpu_count(logical=False) or psutil.cpu_count() or 1
        self.meter = EnergyMeter(self._cores)
        self.run_dir: Path | None = None
        self.rented: tuple[float, float] | None = None  # a rented GPU's (price per hour, budget cap)
        grid = QGridLayout(self)
        self.labels: dict[str, QLabel] = {}
        self.names: dict[str, QLabel] = {}
        for column, key in enumerate(("Power now", "Energy", "Cost", "CO2")):
            name = QLabel(key)
            self.names[key] = name
            name.setObjectName("muted")
            value = QLabel("—")
            value.setWordWrap(True)
            value.setStyleSheet("font-weight: bold;")
            value.setAccessibleName(key if key == "Power now" else f"{key} so far")
            self.labels[key] = value
            grid.addWidget(name, 0, column)
            grid.addWidget(value, 1, column)
            grid.setColumnStretch(column, 1)
        source = QLabel()
        source.setWordWrap(True)
        source.setObjectName("muted")
        source.setAccessibleName("Where the energy figures come from")
        self.labels["Source"] = source
        grid.addWidget(source, 2, 0, 1, 4)

    def reset(self, run_dir: Path, rented: tuple[float, float] | None = None) -> None:
        """Show this run's kept total (none yet for a new run), and count on from it if it trains again; for a
        run on a rented GPU (`rented`: its price per hour and budget cap), its cost against the cap instead."""
        self.run_dir = run_dir
        self.settings = energy_settings()
        self.rented = rented
        for key, name in zip(("Power now", "Energy", "Cost", "CO2"),
                             ("Price", "Budget cap", "Cost so far", "Budget used") if rented else
                             ("Power now", "Energy", "Cost", "CO2"), strict=True):
            self.names[key].setText(name)
            self.labels[key].setAccessibleName(name if rented or key == "Power now" else f"{key} so far")
        kept = load_run_energy(run_dir)
        self.meter = EnergyMeter(self._cores, kept.energy_kwh if kept else 0.0, kept.estimated if kept else False)
        if rented is not None:
            self.show_rented_cost(None)
        else:
            self._show(kept, power=None)

    def show_rented_cost(self, cost_usd: float | None, budget_usd: float | None = None) -> None:
        """The rented machine's cost so far (None: not reported yet), against its budget cap."""
        if self.rented is None:
            return
        price, budget = self.rented
        budget = budget_usd or budget
        self.setTitle("Rented GPU cost so far")
        self.labels["Power now"].setText(f"${price:.2f} per hour")
        self.labels["Energy"].setText(f"${budget:.2f}")
        self.labels["Cost"].setText(f"${cost_usd:.2f}" if cost_usd is not None else "—")
        self.labels["CO2"].setText(f"{min(cost_usd / budget, 1.0):.0%}" if cost_usd is not None and budget else "—")
        self.labels["Source"].setText(
            "What the rented machine has cost since it was created (setup included), at the provider's price. "
            "Studio stops the run and switches the machine off when the budget cap is reached.")

    def add_sample(self, sample: SystemSample) -> None:
        if self.rented is not None:  # this computer's power is not what a rented run uses
            return
        self.settings = energy_settings()  # a price changed in the settings step counts at once
        reading = self.meter.add(sample.power())
        self._show(RunEnergy(reading.energy_kwh, reading.estimated, reading.sources), reading.power_w)

    def total(self) -> RunEnergy | None:
        reading = self.meter.reading
        if reading is None:
            return load_run_energy(self.run_dir) if self.run_dir is not None else None
        return RunEnergy(reading.energy_kwh, reading.estimated, reading.sources)

    def save(self) -> None:
        """Keep the total beside the run's events (the worker has ended, or is being left)."""
        total = self.total()
        if self.run_dir is not None and total is not None and self.meter.reading is not None:
            save_run_energy(self.run_dir, total)

    def _show(self, energy: RunEnergy | None, power: float | None) -> None:
        if energy is None:
            for label in self.labels.values():
                label.setText("—")
            self.labels["Source"].setText("Measured while Studio watches the run.")
            return
        estimated = " (estimated)" if energy.estimated and power is not None else ""
        self.labels["Power now"].setText(f"{power:.0f} W{estimated}" if power is not None else "—")
        self.setTitle("Energy so far, estimated (this computer does not report all of its power)"
                      if energy.estimated else "Energy so far, measured")
        for key, text in footprint_texts(energy, self.settings, mark_estimates=False).items():
            self.labels[key].setText(text)
        where = f" at {self.settings.money(self.settings.price_per_kwh)} per kWh" if not self.settings.free else ""
        self.labels["Source"].setText(
            f"{energy.sources or 'From the run record'}{where}, "
            f"{self.settings.grid_g_per_kwh:.0f} g CO2 per kWh (change them in the settings step).")
