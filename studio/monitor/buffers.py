"""Metric buffers the charts redraw from: plain Python (no Qt), filled by events, read on a redraw timer.

Series grow in place (amortized doubling) and hand out numpy views, so a 100,000-point loss curve costs
nothing to append to and nothing to copy on a redraw. The smoothed loss is kept incrementally for the
current smoothing factor and recomputed once when the user moves the slider.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from studio.engine.events import Anomaly, Checkpoint, Eval, Event, Progress, Recovery


class Series:
    """An append-only (x, y) series with numpy views of its filled part."""

    def __init__(self, capacity: int = 1024) -> None:
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def append(self, x: float, y: float) -> None:
        if self._n == len(self._x):
            self._x = np.concatenate([self._x, np.empty_like(self._x)])
            self._y = np.concatenate([self._y, np.empty_like(self._y)])
        self._x[self._n] = x
        self._y[self._n] = y
        self._n += 1

    @property
    def x(self) -> np.ndarray:
        return self._x[: self._n]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self._n]

    def last(self) -> tuple[float, float] | None:
        return (float(self._x[self._n - 1]), float(self._y[self._n - 1])) if self._n else None


class SmoothedSeries(Series):
    """Debiased exponential moving average (as TensorBoard draws it) of another series."""

    def __init__(self, weight: float = 0.6) -> None:
        super().__init__()
        self.weight = weight
        self._ema = 0.0
        self._count = 0

    def push(self, x: float, y: float) -> None:
        self._ema = self.weight * self._ema + (1.0 - self.weight) * y
        self._count += 1
        debias = 1.0 - self.weight**self._count if self.weight > 0 else 1.0
        self.append(x, self._ema / debias)

    def rebuild(self, source: Series, weight: float) -> None:
        self.__init__(weight)  # type: ignore[misc]
        for x, y in zip(source.x.tolist(), source.y.tolist(), strict=True):
            self.push(x, y)


@dataclass(frozen=True)
class Marker:
    """A vertical line on the charts: where a checkpoint, an anomaly or a recovery happened."""

    step: float
    kind: str  # "checkpoint" | "anomaly" | "recovery"
    label: str


# Series a progress event feeds (x = step), and machine readings sampled by the GUI (x = seconds).
PROGRESS_SERIES = ("loss", "lr", "tokens_per_s", "grad_norm", "reward_margin", "reward_accuracy")
# Preference tuning (DPO, ORPO): how the chosen answers fare against the rejected ones, on training pairs and
# on held-out pairs. An SFT run leaves these empty, and the dashboard shows no preference charts for it.
REWARD_SERIES = ("reward_margin", "reward_accuracy", "eval_reward_margin", "eval_reward_accuracy")
SYSTEM_SERIES = (
    "cpu_percent", "ram_percent", "gpu_util_percent", "gpu_mem_percent", "gpu_temp_c", "gpu_power_w",
)


class MetricBuffers:
    """Everything the charts draw, as plain data. `version` changes whenever something new arrived."""

    def __init__(self, smoothing: float = 0.6) -> None:
        self.series: dict[str, Series] = {
            name: Series() for name in dict.fromkeys((*PROGRESS_SERIES, "eval_loss", *REWARD_SERIES, *SYSTEM_SERIES))
        }
        self.smoothed_loss = SmoothedSeries(smoothing)
        self.markers: list[Marker] = []
        self.baseline_loss: float | None = None
        self.version = 0

    @property
    def has_rewards(self) -> bool:
        """Whether this run reports preference rewards (DPO, ORPO), so their charts have something to say."""
        return any(len(self.series[name]) for name in REWARD_SERIES)

    @property
    def smoothing(self) -> float:
        return self.smoothed_loss.weight

    def set_smoothing(self, weight: float) -> None:
        weight = min(max(weight, 0.0), 0.99)
        if weight != self.smoothed_loss.weight:
            self.smoothed_loss.rebuild(self.series["loss"], weight)
            self.version += 1

    def apply(self, event: Event) -> bool:
        """Take one event in; True when it changed what the charts show."""
        if isinstance(event, Progress):
            return self._progress(event)
        if isinstance(event, Eval):
            for name, value in (("eval_reward_margin", event.reward_margin),
                                ("eval_reward_accuracy", event.reward_accuracy)):
                if value is not None:
                    self._add(self.series[name], event.step, value)
            return self._add(self.series["eval_loss"], event.step, event.eval_loss)
        if isinstance(event, Checkpoint):
            return self._mark(event.step, "checkpoint", f"checkpoint ({event.reason})")
        if isinstance(event, Anomaly):
            return self._mark(event.step, "anomaly", event.anomaly.replace("_", " "))
        if isinstance(event, Recovery):
            return self._mark(event.step, "recovery", event.action.replace("_", " "))
        return False

    def add_system(self, t: float, readings: dict[str, float | None]) -> None:
        """One machine reading; absent sensors (no GPU) are simply skipped."""
        for name in SYSTEM_SERIES:
            value = readings.get(name)
            if value is not None and math.isfinite(value):
                self.series[name].append(t, float(value))
        self.version += 1

    def _progress(self, event: Progress) -> bool:
        changed = False
        step = float(event.step)
        for name in PROGRESS_SERIES:
            value = getattr(event, name)
            if value is None or not math.isfinite(value):
                continue
            self.series[name].append(step, float(value))
            changed = True
            if name == "loss":
                self.smoothed_loss.push(step, float(value))
                self._update_baseline()
        if changed:
            self.version += 1
        return changed

    def _update_baseline(self) -> None:
        """The starting loss: the median of the first few values, so one noisy first step does not set it."""
        loss = self.series["loss"]
        if self.baseline_loss is None or len(loss) <= 5:
            self.baseline_loss = float(np.median(loss.y[:5]))

    def _add(self, series: Series, x: float, y: float) -> bool:
        if not math.isfinite(y):
            return False
        series.append(float(x), float(y))
        self.version += 1
        return True

    def _mark(self, step: float, kind: str, label: str) -> bool:
        self.markers.append(Marker(float(step), kind, label))
        self.version += 1
        return True
