"""CPU package power from Linux's RAPL counters (/sys/class/powercap/intel-rapl:N/energy_uj).

Each package domain keeps a running energy counter in microjoules that wraps at max_energy_range_uj; the
power is the difference between two readings over the time between them. Since Linux 5.10 the counters
are readable by root only (a side channel), so on most desktops they are not readable at all: then
`available` is False and the dashboard falls back to a labelled estimate. AMD CPUs use the same files.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

POWERCAP = Path("/sys/class/powercap")
_PACKAGE = re.compile(r"intel-rapl:\d+$")  # intel-rapl:0, not its sub-domains (intel-rapl:0:0 = cores)


@dataclass(frozen=True)
class Domain:
    name: str  # "package-0"
    energy_file: Path
    max_range_uj: int


def package_domains(root: Path = POWERCAP) -> list[Domain]:
    """The CPU package domains whose counters this process can read (none where they are root-only)."""
    found: list[Domain] = []
    try:
        candidates = sorted(p for p in root.iterdir() if _PACKAGE.fullmatch(p.name))
    except OSError:
        return found
    for folder in candidates:
        try:
            name = (folder / "name").read_text(encoding="ascii").strip()
            max_range = int((folder / "max_energy_range_uj").read_text(encoding="ascii").strip())
            int((folder / "energy_uj").read_text(encoding="ascii").strip())  # readable at all?
        except (OSError, ValueError) as exc:  # PermissionError above all: root-only counters
            log.debug("RAPL domain %s not readable: %s", folder, exc)
            continue
        if name.startswith("package"):
            found.append(Domain(name, folder / "energy_uj", max_range))
    return found


def energy_delta_uj(before: int, after: int, max_range_uj: int) -> int:
    """Microjoules used between two readings of one counter, across at most one wrap-around."""
    if after >= before:
        return after - before
    return max_range_uj - before + after


class RaplReader:
    """Watts drawn by all CPU packages since the previous call; None before the second reading or when
    the counters cannot be read."""

    def __init__(self, root: Path = POWERCAP) -> None:
        self._domains = package_domains(root)
        self._last: tuple[float, list[int]] | None = None

    @property
    def available(self) -> bool:
        return bool(self._domains)

    def read_w(self, now: float) -> float | None:
        """`now` in seconds on a monotonic clock (the caller's, so tests choose the time)."""
        if not self._domains:
            return None
        try:
            values = [int(d.energy_file.read_text(encoding="ascii").strip()) for d in self._domains]
        except (OSError, ValueError) as exc:  # permissions changed, or a domain went away
            log.debug("RAPL reading failed: %s", exc)
            self._domains, self._last = [], None
            return None
        last, self._last = self._last, (now, values)
        if last is None or now <= last[0]:
            return None
        joules = sum(
            energy_delta_uj(before, after, d.max_range_uj)
            for before, after, d in zip(last[1], values, self._domains, strict=True)
        ) / 1e6
        return joules / (now - last[0])
