"""What a training run costs in electricity and carbon, honestly: energy, money and CO2, each with a range.

The planner gives a time range and one power figure for the machine; the power draw itself is uncertain
(a GPU rarely runs at its limit, a CPU's figure is a guess from its core count), so the energy range
multiplies both uncertainties. The price and the grid's carbon intensity are the user's, kept in the data
folder; the defaults come from the locale's country, through a small table, or a world average.
"""

from __future__ import annotations

import json
import locale
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from studio.engine.paths import studio_home
from studio.engine.planner.types import Interval

log = logging.getLogger(__name__)

SETTINGS_FILE = "energy-settings.json"

# Country -> (grid carbon intensity in gCO2/kWh, typical household price per kWh, currency).
# Intensities: Ember's yearly electricity review and Our World in Data, "carbon intensity of electricity
# generation", 2023, rounded. Prices: GlobalPetrolPrices.com household electricity prices, 2024, rounded,
# in the local currency. They are defaults to be corrected in Settings, not a tariff.
COUNTRIES: dict[str, tuple[float, float, str]] = {
    "US": (369.0, 0.17, "USD"), "CA": (170.0, 0.17, "CAD"), "MX": (420.0, 1.2, "MXN"),
    "BR": (100.0, 0.80, "BRL"), "GB": (238.0, 0.25, "GBP"), "IE": (290.0, 0.37, "EUR"),
    "FR": (56.0, 0.25, "EUR"), "DE": (381.0, 0.40, "EUR"), "NL": (268.0, 0.35, "EUR"),
    "BE": (150.0, 0.35, "EUR"), "ES": (174.0, 0.22, "EUR"), "PT": (150.0, 0.22, "EUR"),
    "IT": (330.0, 0.30, "EUR"), "AT": (110.0, 0.30, "EUR"), "CH": (35.0, 0.30, "CHF"),
    "FI": (80.0, 0.20, "EUR"), "SE": (41.0, 1.8, "SEK"), "NO": (30.0, 1.5, "NOK"),
    "DK": (150.0, 2.5, "DKK"), "PL": (660.0, 1.0, "PLN"), "CZ": (450.0, 6.0, "CZK"),
    "JP": (485.0, 31.0, "JPY"), "KR": (430.0, 150.0, "KRW"), "CN": (580.0, 0.55, "CNY"),
    "IN": (710.0, 7.0, "INR"), "AU": (550.0, 0.33, "AUD"), "NZ": (110.0, 0.33, "NZD"),
    "ZA": (710.0, 3.0, "ZAR"),
}
# Ember's world average for 2023, and a world-average household price in US dollars.
WORLD = (480.0, 0.15, "USD")
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "CNY": "¥", "INR": "₹", "KRW": "₩"}

# Share of the planner's power figure that a training run really draws, by device: a GPU's figure is its
# limit (it draws half to all of it), a CPU's is a guess from its core count.
POWER_SPREAD = {"cuda": (0.5, 1.1), "mps": (0.6, 1.4), "cpu": (0.5, 1.5)}


@dataclass(frozen=True)
class EnergySettings:
    """What electricity costs and how clean it is where the computer is plugged in."""

    price_per_kwh: float
    currency: str
    grid_g_per_kwh: float
    country: str = ""  # ISO code the defaults came from; "" for the world average

    @property
    def free(self) -> bool:
        return self.price_per_kwh <= 0.0

    def money(self, amount: float) -> str:
        """'€0.0046', '$1.20', '1.80 SEK': small amounts keep enough digits not to read as nothing."""
        decimals = 2 if amount >= 0.1 or amount == 0 else 3 if amount >= 0.01 else 4
        number = f"{amount:.{decimals}f}"
        symbol = CURRENCY_SYMBOLS.get(self.currency)
        return f"{symbol}{number}" if symbol else f"{number} {self.currency}"


@dataclass(frozen=True)
class Footprint:
    """Energy, cost and CO2 of one run (planned or measured so far); cost is in the settings' currency."""

    energy_kwh: Interval
    cost: Interval
    co2_g: Interval


def locale_country(environ: dict[str, str] | None = None) -> str:
    """The country part of the user's locale ('de_DE.UTF-8' -> 'DE'), or '' when there is none (C, POSIX)."""
    env = os.environ if environ is None else environ
    for name in ("LC_ALL", "LC_MONETARY", "LANG"):
        value = env.get(name, "")
        if value:
            return country_of(value)
    if environ is None:
        code = locale.getlocale()[0] or ""
        return country_of(code)
    return ""


def country_of(locale_name: str) -> str:
    """'en_GB.UTF-8' or 'de-AT' -> 'GB' / 'AT'; anything without a country part -> ''."""
    base = locale_name.split(".")[0].split("@")[0].replace("-", "_")
    parts = base.split("_")
    return parts[1].upper() if len(parts) > 1 and len(parts[1]) == 2 else ""


def default_settings(country: str | None = None) -> EnergySettings:
    """Defaults for a country (the locale's when None), or the world average for one not in the table."""
    code = (locale_country() if country is None else country).upper()
    grid, price, currency = COUNTRIES.get(code, WORLD)
    return EnergySettings(price, currency, grid, code if code in COUNTRIES else "")


def settings_path() -> Path:
    return studio_home() / SETTINGS_FILE


def load_settings(path: Path | None = None, country: str | None = None) -> EnergySettings:
    """The user's saved settings, or the locale's defaults when none are saved (or the file is damaged)."""
    source = path or settings_path()
    try:
        data: Any = json.loads(source.read_text(encoding="utf-8"))
        settings = EnergySettings(
            price_per_kwh=float(data["price_per_kwh"]),
            currency=str(data["currency"]),
            grid_g_per_kwh=float(data["grid_g_per_kwh"]),
            country=str(data.get("country", "")),
        )
        if settings.price_per_kwh < 0 or settings.grid_g_per_kwh < 0 or not settings.currency:
            raise ValueError("negative price or intensity, or no currency")
        return settings
    except FileNotFoundError:
        return default_settings(country)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        log.warning("Ignoring damaged energy settings %s: %s", source, exc)
        return default_settings(country)


def save_settings(settings: EnergySettings, path: Path | None = None) -> Path:
    """Atomic write, so a crash mid-save never leaves settings that fail to load."""
    target = path or settings_path()
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(settings), indent=2), encoding="utf-8")
    tmp.replace(target)
    return target


def planned_footprint(
    total_time_s: Interval, power_w: float, device: str, settings: EnergySettings
) -> Footprint:
    """The planner's time range and power figure as energy, cost and CO2 ranges."""
    low, high = POWER_SPREAD.get(device, POWER_SPREAD["cpu"])
    kwh_per_s = power_w / 3600.0 / 1000.0
    energy = Interval(
        total_time_s.low * kwh_per_s * low, total_time_s.expected * kwh_per_s, total_time_s.high * kwh_per_s * high
    )
    return Footprint(energy, energy.scaled(settings.price_per_kwh), energy.scaled(settings.grid_g_per_kwh))


def measured_footprint(energy_kwh: float, settings: EnergySettings, spread: float = 0.0) -> Footprint:
    """Energy measured (or estimated from load) so far; `spread` is its relative uncertainty (0 when read
    from the hardware's own counters)."""
    energy = Interval(energy_kwh * (1.0 - spread), energy_kwh, energy_kwh * (1.0 + spread))
    return Footprint(energy, energy.scaled(settings.price_per_kwh), energy.scaled(settings.grid_g_per_kwh))


def energy_text(kwh: float) -> str:
    """'12 Wh', '0.8 Wh', '1.25 kWh'."""
    if kwh >= 1.0:
        return f"{kwh:.2f} kWh"
    wh = kwh * 1000.0
    return f"{wh:.0f} Wh" if wh >= 10 else f"{wh:.1f} Wh" if wh >= 0.1 else f"{wh:.2f} Wh"


def grams_text(g: float) -> str:
    return f"{g / 1000:.2f} kg" if g >= 1000 else f"{g:.0f} g" if g >= 10 else f"{g:.1f} g"
