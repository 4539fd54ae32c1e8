"""The electricity settings as the GUI sees them: saved ones, or defaults for the system locale's country.

QLocale knows the country also where LANG is not set (Windows, macOS), so the GUI asks it rather than
leaving the engine to guess from the environment. Shared by the settings step and the dashboard.
"""

from __future__ import annotations

from PySide6.QtCore import QLocale

from studio.engine.energy import EnergySettings, country_of, load_settings


def energy_settings() -> EnergySettings:
    return load_settings(country=country_of(QLocale.system().name()))
