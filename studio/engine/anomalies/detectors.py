"""One small detector per anomaly, each fed the metrics stream and answering with a Finding or None.

Detectors keep only the recent readings they need, tagged with their step, so that after a rollback the
monitor can rewind them to the restored step and the replayed steps are judged against the same baseline.
They never raise on odd input: a reading that is None, NaN, Inf or not a number is skipped (NaN and Inf
are the NonFiniteDetector's business). De-duplication (cooldown) is the monitor's job, not theirs.
"""

from __future__ import annotations

import itertools
import statistics
from collections import deque
from typing import Protocol

from studio.engine.anomalies.records import (
    ACCURACY_AT_CHANCE,
    DIVERGENCE,
    GRAD_EXPLOSION,
    KL_DRIFT,
    LOSS_SPIKE,
    MARGIN_COLLAPSE,
    MEMORY_PRESSURE,
    NON_FINITE,
    OVERFITTING,
    PLATEAU,
    THROUGHPUT_COLLAPSE,
    EvalMetrics,
    Finding,
    StepMetrics,
    finite,
    fmt,
    is_non_finite,
)
from studio.engine.anomalies.thresholds import Thresholds

MAD_TO_SIGMA = 1.4826  # MAD of a normal distribution times this is its standard deviation


class StepDetector(Protocol):
    kind: str

    def observe_step(self, m: StepMetrics) -> Finding | None: ...

    def rewind(self, step: int) -> None: ...


class EvalDetector(Protocol):
    kind: str

    def observe_eval(self, m: EvalMetrics) -> Finding | None: ...

    def rewind(self, step: int) -> None: ...


class Window:
    """The last `size` (step, value) readings."""

    def __init__(self, size: int) -> None:
        self._items: deque[tuple[int, float]] = deque(maxlen=max(1, size))

    def add(self, step: int, value: float) -> None:
        self._items.append((step, value))

    def values(self) -> list[float]:
        return [v for _, v in self._items]

    def __len__(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        return len(self._items) == self._items.maxlen

    def clear(self) -> None:
        self._items.clear()

    def first_step(self) -> int | None:
        return self._items[0][0] if self._items else None

    def rewind(self, step: int) -> None:
        """Forget readings at or after `step` (they are about to be replayed)."""
        kept = [item for item in self._items if item[0] < step]
        self._items.clear()
        self._items.extend(kept)


def median_mad(values: list[float]) -> tuple[float, float]:
    med = statistics.median(values)
    return med, statistics.median(abs(v - med) for v in values)


def _pct(value: float) -> str:
    return f"{value * 100:.0f}%"


class JudgedWindowDetector:
    """Judges each finite reading against the readings before it, then adds it to the window."""

    kind: str

    def __init__(self, t: Thresholds, size: int) -> None:
        self.t = t
        self.window = Window(size)

    def reading(self, m: StepMetrics) -> float | None:
        raise NotImplementedError

    def judge(self, m: StepMetrics, value: float) -> Finding | None:
        raise NotImplementedError

    def observe_step(self, m: StepMetrics) -> Finding | None:
        value = self.reading(m)
        if value is None:
            return None
        finding = self.judge(m, value)
        self.window.add(m.step, value)
        return finding

    def rewind(self, step: int) -> None:
        self.window.rewind(step)


class NonFiniteDetector:
    """NaN or Inf in the loss or the gradient norm: the weights are no longer trustworthy."""

    kind = NON_FINITE

    def observe_step(self, m: StepMetrics) -> Finding | None:
        bad = {name: value for name, value in (("loss", m.loss), ("grad_norm", m.grad_norm))
               if is_non_finite(value)}
        if not bad:
            return None
        what = " and ".join("the loss" if name == "loss" else "the gradient size" for name in bad)
        return Finding(
            kind=self.kind,
            severity="critical",
            message=(f"At step {m.step} {what} became an invalid number ({next(iter(bad.values()))}). "
                     "The numbers inside the model overflowed, so the updates from here on are unusable."),
            evidence={**bad, "step": m.step, "lr": finite(m.lr)},
            step=m.step,
        )

    def observe_eval(self, m: EvalMetrics) -> Finding | None:
        if not is_non_finite(m.eval_loss):
            return None
        return Finding(
            kind=self.kind,
            severity="critical",
            message=(f"At step {m.step} the loss on the held-out data became an invalid number "
                     f"({m.eval_loss}): the model's numbers overflowed."),
            evidence={"eval_loss": m.eval_loss, "step": m.step},
            step=m.step,
        )

    def rewind(self, step: int) -> None:
        """Nothing to forget: every reading is judged on its own."""


class SpikeDetector(JudgedWindowDetector):
    """One loss reading far above the recent median, measured in robust spreads (median/MAD z-score)."""

    kind = LOSS_SPIKE

    def __init__(self, t: Thresholds) -> None:
        super().__init__(t, t.spike_window)

    def reading(self, m: StepMetrics) -> float | None:
        return finite(m.loss)

    def judge(self, m: StepMetrics, loss: float) -> Finding | None:
        finding = None
        if len(self.window) >= self.t.warmup_steps:
            med, mad = median_mad(self.window.values())
            spread = MAD_TO_SIGMA * mad
            jump = loss - med
            z = jump / spread if spread > 0 else (float("inf") if jump > 0 else 0.0)
            if jump >= self.t.spike_min_rel_jump * abs(med) and z >= self.t.spike_z:
                times = "far more than" if spread == 0 else f"about {z:.0f} times"
                finding = Finding(
                    kind=self.kind,
                    severity="warning",
                    message=(f"The loss jumped to {fmt(loss)} at step {m.step}, {times} its usual spread "
                             f"above the recent typical value of {fmt(med)}."),
                    evidence={"loss": loss, "median": med, "mad": mad, "robust_z": z if spread > 0 else None,
                              "window": len(self.window), "step": m.step},
                    step=m.step,
                )
        elif len(self.window) >= self.t.blowup_min_readings:
            highest = max(self.window.values())
            if highest > 0 and loss >= self.t.blowup_factor * highest:
                finding = Finding(
                    kind=self.kind,
                    severity="warning",
                    message=(f"The loss jumped to {fmt(loss)} at step {m.step}, {loss / highest:.0f} times the "
                             f"highest value so far ({fmt(highest)}): training is blowing up."),
                    evidence={"loss": loss, "highest": highest, "window": len(self.window), "step": m.step},
                    step=m.step,
                )
        return finding


class DivergenceDetector:
    """The smoothed (rolling-median) loss stays well above its best value for many steps in a row."""

    kind = DIVERGENCE

    def __init__(self, t: Thresholds) -> None:
        self.t = t
        self.window = Window(t.smooth_window)
        self.smoothed: list[tuple[int, float]] = []  # whole history, so a rewind can restore the best
        self.best: tuple[int, float] | None = None
        self.streak_start: int | None = None
        self.streak = 0

    def observe_step(self, m: StepMetrics) -> Finding | None:
        loss = finite(m.loss)
        if loss is None:
            return None
        self.window.add(m.step, loss)
        if not self.window.full():
            return None
        current = statistics.median(self.window.values())
        best = self.best
        self.smoothed.append((m.step, current))
        if best is None or current < best[1]:
            self.best = (m.step, current)
        if best is None or len(self.smoothed) < self.t.warmup_steps:
            return None
        best_step, best_value = best
        limit = best_value + max(self.t.divergence_rise * abs(best_value), self.t.divergence_min_abs_rise)
        if current <= limit:
            self.streak, self.streak_start = 0, None
            return None
        self.streak += 1
        self.streak_start = self.streak_start if self.streak_start is not None else m.step
        if self.streak < self.t.divergence_patience:
            return None
        self.streak, self.streak_start, since = 0, None, self.streak_start
        rise = (current - best_value) / abs(best_value) if best_value else float("inf")
        return Finding(
            kind=self.kind,
            severity="critical",
            message=(f"The loss has kept rising since step {since}: its smoothed value went from "
                     f"{fmt(best_value)} (step {best_step}) to {fmt(current)} (step {m.step}), "
                     f"{_pct(rise)} worse. Training is diverging instead of learning."),
            evidence={"best_smoothed_loss": best_value, "best_step": best_step, "smoothed_loss": current,
                      "rise": rise, "rising_since_step": since, "step": m.step},
            step=m.step,
        )

    def rewind(self, step: int) -> None:
        self.window.rewind(step)
        self.smoothed = [item for item in self.smoothed if item[0] < step]
        self.best = min(self.smoothed, key=lambda item: item[1]) if self.smoothed else None
        self.streak, self.streak_start = 0, None


class GradExplosionDetector(JudgedWindowDetector):
    """A gradient norm many times its running median: one bad batch or a learning rate that is too high."""

    kind = GRAD_EXPLOSION

    def __init__(self, t: Thresholds) -> None:
        super().__init__(t, t.grad_window)

    def reading(self, m: StepMetrics) -> float | None:
        return finite(m.grad_norm)

    def judge(self, m: StepMetrics, norm: float) -> Finding | None:
        if len(self.window) < self.t.warmup_steps:
            return None
        med = statistics.median(self.window.values())
        if med <= 0 or norm < self.t.grad_ratio * med:
            return None
        ratio = norm / med
        return Finding(
            kind=self.kind,
            severity="warning",
            message=(f"The gradient size jumped to {fmt(norm)} at step {m.step}, about {ratio:.0f} "
                     f"times its usual {fmt(med)}. Updates this large can wreck what the model "
                     "has learned."),
            evidence={"grad_norm": norm, "median": med, "ratio": ratio, "lr": finite(m.lr), "step": m.step},
            step=m.step,
        )


class OverfitDetector:
    """Held-out loss rising at several evaluations in a row while the training loss keeps falling."""

    kind = OVERFITTING

    def __init__(self, t: Thresholds) -> None:
        self.t = t
        self.evals: list[EvalMetrics] = []

    @property
    def best(self) -> EvalMetrics | None:
        finite_evals = [e for e in self.evals if finite(e.eval_loss) is not None]
        return min(finite_evals, key=lambda e: e.eval_loss) if finite_evals else None

    def observe_eval(self, m: EvalMetrics) -> Finding | None:
        if finite(m.eval_loss) is None:
            return None
        self.evals.append(m)
        k = self.t.overfit_evals
        if len(self.evals) <= k:
            return None
        stretch = self.evals[-(k + 1):]
        delta = self.t.overfit_min_delta
        rising = all(b.eval_loss - a.eval_loss > delta for a, b in itertools.pairwise(stretch))
        first_train, last_train = finite(stretch[0].train_loss), finite(stretch[-1].train_loss)
        if not rising or first_train is None or last_train is None or last_train >= first_train:
            return None
        best = self.best
        assert best is not None  # the stretch holds finite evaluations
        self.evals = self.evals[-1:]  # a new stretch must build up before reporting again
        return Finding(
            kind=self.kind,
            severity="warning",
            message=(f"The loss on held-out data rose at {k} checks in a row (to {fmt(m.eval_loss)} at step "
                     f"{m.step}) while the training loss kept falling "
                     f"({fmt(first_train)} → {fmt(last_train)}): "
                     "the model is memorising its training examples instead of learning from them. "
                     f"The best model so far was at step {best.step} (held-out loss {fmt(best.eval_loss)})."),
            evidence={"eval_steps": [e.step for e in stretch], "eval_losses": [e.eval_loss for e in stretch],
                      "train_losses": [first_train, last_train], "best_step": best.step,
                      "best_eval_loss": best.eval_loss, "step": m.step},
            step=m.step,
        )

    def rewind(self, step: int) -> None:
        self.evals = [e for e in self.evals if e.step < step]


class PlateauDetector:
    """The smoothed loss has not improved meaningfully for a whole window of steps."""

    kind = PLATEAU

    def __init__(self, t: Thresholds) -> None:
        self.t = t
        self.window = Window(t.plateau_smooth_window)
        self.reference: tuple[int, float] | None = None  # last meaningful improvement (step, smoothed loss)

    def observe_step(self, m: StepMetrics) -> Finding | None:
        loss = finite(m.loss)
        if loss is None:
            return None
        self.window.add(m.step, loss)
        if not self.window.full():
            return None
        current = statistics.median(self.window.values())
        if self.reference is None or current < self.reference[1] - self.t.plateau_min_rel_improvement * abs(
            self.reference[1]
        ):
            self.reference = (m.step, current)
            return None
        ref_step, ref_value = self.reference
        if m.step - ref_step < self.t.plateau_window:
            return None
        self.reference = (m.step, min(current, ref_value))
        return Finding(
            kind=self.kind,
            severity="info",
            message=(f"The loss has not improved by more than {_pct(self.t.plateau_min_rel_improvement)} "
                     f"in the last {m.step - ref_step} steps (it has stayed near {fmt(current)}). More "
                     "training like this is unlikely to help; the model may have learned what it can from "
                     "this data."),
            evidence={"smoothed_loss": current, "reference_loss": ref_value, "since_step": ref_step,
                      "steps_without_improvement": m.step - ref_step, "step": m.step},
            step=m.step,
        )

    def rewind(self, step: int) -> None:
        self.window.rewind(step)
        if self.reference is not None and self.reference[0] >= step:
            self.reference = None


class MemoryPressureDetector:
    """GPU memory or system RAM nearly full: the next step may crash (GPU) or start swapping (RAM)."""

    kind = MEMORY_PRESSURE

    def __init__(self, t: Thresholds) -> None:
        self.t = t

    def observe_step(self, m: StepMetrics) -> Finding | None:
        readings = {"gpu": finite(m.gpu_mem_frac), "ram": finite(m.ram_frac)}
        over = {name: frac for name, frac in readings.items()
                if frac is not None and frac > self.t.memory_warning_frac}
        if not over:
            return None
        resource, frac = max(over.items(), key=lambda item: item[1])
        critical = frac > self.t.memory_critical_frac
        if resource == "gpu":
            text = (f"GPU memory is {_pct(frac)} full at step {m.step}. If it fills up, training stops with "
                    "an out-of-memory error; a smaller batch would leave room.")
        else:
            text = (f"The computer's memory (RAM) is {_pct(frac)} full at step {m.step}. It may start "
                    "swapping to disk, which makes training very slow or crashes it; closing other "
                    "programs helps.")
        return Finding(
            kind=self.kind,
            severity="critical" if critical else "warning",
            message=text,
            evidence={"resource": resource, "fraction": frac, "gpu_mem_frac": readings["gpu"],
                      "ram_frac": readings["ram"], "threshold": self.t.memory_warning_frac, "step": m.step},
            step=m.step,
        )

    def rewind(self, step: int) -> None:
        """Nothing to forget: every reading is judged on its own."""


class ThroughputDetector:
    """Tokens per second far below the recent median for several steps: throttling, swapping, contention."""

    kind = THROUGHPUT_COLLAPSE

    def __init__(self, t: Thresholds) -> None:
        self.t = t
        self.baseline = Window(t.throughput_window)
        self.low: list[tuple[int, float]] = []

    def observe_step(self, m: StepMetrics) -> Finding | None:
        speed = finite(m.tokens_per_s)
        if speed is None or speed < 0:
            return None
        if len(self.baseline) < self.t.warmup_steps:
            self.baseline.add(m.step, speed)
            return None
        usual = statistics.median(self.baseline.values())
        if speed >= self.t.throughput_drop_frac * usual:
            self.low.clear()  # a few slow steps (an evaluation, a checkpoint) are normal
            self.baseline.add(m.step, speed)
            return None
        self.low.append((m.step, speed))
        if len(self.low) < self.t.throughput_patience:
            return None
        recent = statistics.median(v for _, v in self.low)
        since = self.low[0][0]
        self.low.clear()
        self.baseline.clear()  # once reported, the new speed becomes the baseline
        ram = finite(m.ram_frac)
        return Finding(
            kind=self.kind,
            severity="warning",
            message=(f"Training slowed down sharply at step {since}: about {fmt(recent)} tokens/s against a "
                     f"usual {fmt(usual)} ({_pct(recent / usual)}). Likely causes: the computer is "
                     "overheating and slowing itself down (thermal throttling), memory is swapping to disk, "
                     "or another program is using the processor or GPU."),
            evidence={"tokens_per_s": recent, "usual_tokens_per_s": usual, "ratio": recent / usual,
                      "since_step": since, "ram_frac": ram, "step": m.step},
            step=m.step,
        )

    def rewind(self, step: int) -> None:
        self.baseline.rewind(step)
        self.low = [item for item in self.low if item[0] < step]


# ---- preference tuning (DPO, ORPO, KTO): the monitor adds these only for those objectives ---------------


class SmoothedSeries:
    """A rolling median of one reading and the history of its smoothed values, rewindable to a step."""

    def __init__(self, width: int) -> None:
        self.window = Window(width)
        self.smoothed: list[tuple[int, float]] = []

    def add(self, step: int, value: float) -> float | None:
        """The new smoothed value, or None until the window is full."""
        self.window.add(step, value)
        if not self.window.full():
            return None
        current = statistics.median(self.window.values())
        self.smoothed.append((step, current))
        return current

    def rewind(self, step: int) -> None:
        self.window.rewind(step)
        self.smoothed = [item for item in self.smoothed if item[0] < step]


class MarginCollapseDetector:
    """The reward margin (chosen minus rejected reward) loses what it had gained, or turns negative.

    The peak is the highest level the smoothed margin held for `margin_patience` readings in a row, so a few
    lucky batches in a noisy run never count as a rise. Three patterns, each of which must last
    `margin_patience` readings of the smoothed margin: it fell to a quarter of its peak or below (collapsed
    towards zero); the mean of the last `margin_fall_window` raw margins is below -`margin_negative` (the
    model now prefers the rejected answers; a mean, because margins near zero are noisy); or it is lower
    than `margin_fall_window` readings ago and has lost half its peak (still falling). A falling margin means
    the preference the model learned is being unlearned, usually because the learning rate is too high or the
    model over-fits the pairs.
    """

    kind = MARGIN_COLLAPSE

    def __init__(self, t: Thresholds) -> None:
        self.t = t
        self.series = SmoothedSeries(t.pref_smooth_window)
        self.raw = Window(t.margin_fall_window)
        self.held: list[tuple[int, float]] = []  # the level the smoothed margin held for `margin_patience` readings
        self.streak: list[tuple[int, str]] = []

    def _peak(self) -> tuple[int, float]:
        """The highest level the margin *held* (not one lucky stretch of batches): a rise that was real."""
        return max(self.held, key=lambda item: item[1]) if self.held else (0, 0.0)

    def _pattern(self, current: float) -> str | None:
        t, history = self.t, self.series.smoothed
        _, peak = self._peak()
        if peak >= t.margin_min_peak and current <= t.margin_collapse_frac * peak:
            return "collapsed"
        if self.raw.full() and statistics.fmean(self.raw.values()) <= -t.margin_negative:
            return "negative"
        if (peak >= t.margin_min_peak and len(history) > t.margin_fall_window
                and current <= (1 - t.margin_fall_frac) * peak
                and current < history[-1 - t.margin_fall_window][1]):
            return "falling"
        return None

    def observe_step(self, m: StepMetrics) -> Finding | None:
        margin = finite(m.reward_margin)
        if margin is None:
            return None
        self.raw.add(m.step, margin)
        current = self.series.add(m.step, margin)
        if current is None:
            return None
        recent = self.series.smoothed[-self.t.margin_patience:]
        if len(recent) == self.t.margin_patience:
            self.held.append((m.step, min(value for _, value in recent)))
        if len(self.series.smoothed) < self.t.warmup_steps:
            return None
        pattern = self._pattern(current)
        if pattern is None:
            self.streak.clear()
            return None
        self.streak.append((m.step, pattern))
        if len(self.streak) < self.t.margin_patience:
            return None
        since, self.streak = self.streak[0][0], []
        peak_step, peak = self._peak()
        if pattern == "negative":
            what = (f"The reward margin has stayed below zero since step {since} (now {fmt(current)}): the "
                    "model now rates the rejected answers above the chosen ones, the opposite of what it "
                    "should learn.")
        elif pattern == "collapsed":
            what = (f"The reward margin collapsed: it rose to {fmt(peak)} at step {peak_step}, then fell to "
                    f"{fmt(current)} by step {m.step}. The model is losing the preference it had learned.")
        else:
            what = (f"The reward margin keeps falling: from {fmt(peak)} at step {peak_step} to "
                    f"{fmt(current)} at step {m.step}. The model is slowly unlearning which answer is better.")
        return Finding(
            kind=self.kind,
            severity="warning" if pattern == "falling" else "critical",
            message=what + " A learning rate that is too high is the usual cause.",
            evidence={"pattern": pattern, "smoothed_margin": current, "peak_margin": peak, "peak_step": peak_step,
                      "since_step": since, "lr": finite(m.lr), "step": m.step},
            step=m.step,
        )

    def rewind(self, step: int) -> None:
        self.series.rewind(step)
        self.raw.rewind(step)
        self.held = [item for item in self.held if item[0] < step]
        self.streak = [item for item in self.streak if item[0] < step]


class AccuracyAtChanceDetector:
    """Reward accuracy stays near 0.5 (a coin flip) for a whole window after warm-up.

    Judged on the mean of `accuracy_window` readings, after `accuracy_warmup_steps` (the first readings are
    taken before the model has learned anything: at step 1 every margin is exactly zero). It also fires when the
    margins stay all but zero whatever the accuracy: TRL's accuracy only counts which reward is larger, so
    with margins of 1e-5 (a learning rate far too low: the loss stays at ln 2) it can read 100% while nothing
    is learned, and identical answers always tie, which TRL counts as wrong (accuracy 0). Once reported, a
    new full window must build up.
    """

    kind = ACCURACY_AT_CHANCE

    def __init__(self, t: Thresholds) -> None:
        self.t = t
        self.warm: list[int] = []  # steps of the warm-up readings, which are not judged
        self.window = Window(t.accuracy_window)
        self.margins = Window(t.accuracy_window)

    def observe_step(self, m: StepMetrics) -> Finding | None:
        accuracy = finite(m.reward_accuracy)
        if accuracy is None:
            return None
        if len(self.warm) < self.t.accuracy_warmup_steps:
            self.warm.append(m.step)
            return None
        self.window.add(m.step, accuracy)
        margin = finite(m.reward_margin)
        if margin is not None:
            self.margins.add(m.step, abs(margin))
        if not self.window.full():
            return None
        mean = statistics.fmean(self.window.values())
        flat = len(self.margins) > 0 and statistics.fmean(self.margins.values()) < self.t.accuracy_flat_margin
        coin_flip = abs(mean - 0.5) <= self.t.accuracy_band
        if not (coin_flip or flat):
            return None
        since = self.window.first_step() or m.step
        mean_margin = statistics.fmean(self.margins.values()) if len(self.margins) else None
        self.window.clear()
        self.margins.clear()
        if flat:
            what = (f"From step {since} to {m.step} the model barely told the chosen and rejected answers apart: "
                    f"the reward margin stayed about {fmt(mean_margin or 0.0)}, far too small for its accuracy "
                    f"({_pct(mean)}) to mean anything. It is not learning which answer is better.")
        else:
            what = (f"From step {since} to {m.step} the model picked the better answer only {_pct(mean)} of the "
                    "time, no better than a coin flip: it is not learning which answer is better.")
        return Finding(
            kind=self.kind,
            severity="warning",
            message=what + (" Likely causes: a learning rate that is too low, a beta that does not suit the "
                            "data, or chosen and rejected answers that are too alike."),
            evidence={"mean_accuracy": mean, "mean_abs_margin": mean_margin, "flat": flat, "since_step": since,
                      "readings": self.t.accuracy_window, "lr": finite(m.lr), "step": m.step},
            step=m.step,
        )

    def rewind(self, step: int) -> None:
        self.window.rewind(step)
        self.margins.rewind(step)
        self.warm = [s for s in self.warm if s < step]


class KLDriftDetector:
    """The model drifts far from the reference model it is meant to stay close to (DPO and KTO only).

    Two signals, each smoothed and required for `drift_patience` readings after warm-up:
    * the chosen answers became much less likely than under the reference (rewards/chosen / beta below
      -`drift_chosen_nats`) while the margin stays positive: the model separates the answers by pushing
      both down, the known DPO failure, which leaves it worse at the good answers too;
    * (KTO) the logged KL estimate between the model and the reference reached `drift_kl_nats`.
    """

    kind = KL_DRIFT

    def __init__(self, t: Thresholds, beta: float | None = None) -> None:
        self.t = t
        self.beta = beta if beta is not None and beta > 0 else t.default_beta
        self.chosen = SmoothedSeries(t.pref_smooth_window)
        self.margin = SmoothedSeries(t.pref_smooth_window)
        self.kl = SmoothedSeries(t.pref_smooth_window)
        self.streak: list[int] = []

    def observe_step(self, m: StepMetrics) -> Finding | None:
        chosen_reward, margin, kl = finite(m.reward_chosen), finite(m.reward_margin), finite(m.kl)
        chosen = self.chosen.add(m.step, chosen_reward / self.beta) if chosen_reward is not None else None
        smoothed_margin = self.margin.add(m.step, margin) if margin is not None else None
        smoothed_kl = self.kl.add(m.step, kl) if kl is not None else None
        ready = max(len(self.chosen.smoothed), len(self.kl.smoothed)) >= self.t.warmup_steps
        pushed_down = (chosen is not None and chosen <= -self.t.drift_chosen_nats
                       and smoothed_margin is not None and smoothed_margin > 0)
        kl_high = smoothed_kl is not None and smoothed_kl >= self.t.drift_kl_nats
        if not ready or not (pushed_down or kl_high):
            self.streak.clear()
            return None
        self.streak.append(m.step)
        if len(self.streak) < self.t.drift_patience:
            return None
        since, self.streak = self.streak[0], []
        if kl_high and not pushed_down:
            what = (f"The model has been drifting away from where training started since step {since}: the "
                    f"measured difference (KL) is {fmt(smoothed_kl or 0.0)} and growing past "
                    f"{fmt(self.t.drift_kl_nats)}.")
        else:
            what = (f"Since step {since} the model has made the chosen answers much less likely than at the "
                    f"start (about {fmt(-(chosen or 0.0))} lower log-probability), even though it still ranks "
                    "them above the rejected ones: it wins by making both answers unlikely, which drifts "
                    "away from where training started and makes its answers worse.")
        return Finding(
            kind=self.kind,
            severity="warning",
            message=what + " A beta that is too small or a learning rate that is too high lets the model move "
                           "this far.",
            evidence={"chosen_logratio": chosen, "smoothed_margin": smoothed_margin, "kl": smoothed_kl,
                      "beta": self.beta, "since_step": since, "lr": finite(m.lr), "step": m.step},
            step=m.step,
        )

    def rewind(self, step: int) -> None:
        for series in (self.chosen, self.margin, self.kl):
            series.rewind(step)
        self.streak = [s for s in self.streak if s < step]
