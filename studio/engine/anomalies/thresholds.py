"""Every number the anomaly detectors and recovery policies use, in one documented, frozen place.

The defaults were chosen so that a normal noisy loss curve never raises an alert (checked by the tests
over many seeds and noise levels) while real failures are caught within a few dozen steps; docs/anomalies.md
explains each one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Thresholds:
    # ---- shared ----------------------------------------------------------------------------------------
    warmup_steps: int = 20
    """Readings a detector needs before it may raise an alarm (except NaN/Inf, which is never normal)."""
    cooldown_steps: int = 50
    """Steps during which the same kind of anomaly is not reported again."""

    # ---- loss spike: robust z-score of one reading against a moving baseline ----------------------------
    spike_window: int = 50
    """Recent loss readings that form the baseline (median and MAD)."""
    spike_z: float = 8.0
    """Robust z-score (distance from the median in units of 1.4826 x MAD) that counts as a spike."""
    spike_min_rel_jump: float = 0.5
    """The reading must also be at least this much above the median, relative to it (50%)."""
    blowup_factor: float = 3.0
    """During warm-up, a loss this many times the highest reading so far is a spike all the same: a run's
    first readings are its highest, so tripling them is never a normal start (an exploding learning rate)."""
    blowup_min_readings: int = 3

    # ---- divergence: sustained rise of the smoothed loss ------------------------------------------------
    smooth_window: int = 31
    """Rolling-median width used to smooth the loss (isolated spikes do not move it)."""
    divergence_rise: float = 0.3
    """How far the smoothed loss must rise above its best value, relative to it (30%)."""
    divergence_min_abs_rise: float = 0.05
    """And by at least this much in absolute terms, so a tiny memorised loss does not trip it."""
    divergence_patience: int = 25
    """Consecutive steps the smoothed loss must stay that high: a rise, not a blip."""

    # ---- gradient explosion ---------------------------------------------------------------------------
    grad_window: int = 100
    """Recent gradient norms that form the baseline."""
    grad_ratio: float = 10.0
    """A gradient norm this many times its running median counts as an explosion."""

    # ---- overfitting (evaluations) --------------------------------------------------------------------
    overfit_evals: int = 3
    """Consecutive evaluations with a rising eval loss (while the train loss falls)."""
    overfit_min_delta: float = 1e-3
    """Smallest rise between two evaluations that counts."""

    # ---- plateau -------------------------------------------------------------------------------------
    plateau_window: int = 400
    """Steps without a meaningful improvement of the smoothed loss before saying it has plateaued."""
    plateau_smooth_window: int = 100
    """Rolling-median width for the plateau check; wider than for divergence to average out noise."""
    plateau_min_rel_improvement: float = 0.01
    """An improvement smaller than this fraction of the best smoothed loss does not count (1%)."""

    # ---- memory pressure -----------------------------------------------------------------------------
    memory_warning_frac: float = 0.90
    """GPU memory or system RAM in use above this fraction is a warning."""
    memory_critical_frac: float = 0.97
    """Above this fraction an out-of-memory crash is imminent: critical."""

    # ---- throughput collapse -------------------------------------------------------------------------
    throughput_window: int = 50
    """Recent tokens-per-second readings that form the baseline."""
    throughput_drop_frac: float = 0.40
    """A reading below this fraction of the baseline median is a collapse candidate."""
    throughput_patience: int = 5
    """Consecutive low readings before reporting (a single slow step, e.g. an evaluation, is normal)."""

    # ---- preference tuning (DPO, ORPO, KTO runs only; never SFT) --------------------------------------
    # TRL logs rewards as beta x log-probability ratios, so margins are in the units of beta (default 0.1).
    pref_smooth_window: int = 10
    """Rolling-median width for the reward margin, the chosen reward and KTO's KL (batches are small and
    noisy: one odd batch must not move it)."""
    margin_min_peak: float = 0.5
    """The smoothed margin must first have held this level (5 nats at beta 0.1) before a fall counts as a
    collapse: below it, batch noise alone makes such rises and falls (a run that never separated the
    answers is the accuracy rule's business)."""
    margin_collapse_frac: float = 0.25
    """Collapsed: the smoothed margin fell to a quarter of its peak or below, i.e. towards zero."""
    margin_negative: float = 0.2
    """Or the mean of the last `margin_fall_window` margins stays below minus this after warm-up: the model
    prefers the rejected answers (by chance alone, a mean of 50 noisy margins around zero stays within
    about 0.05 of zero)."""
    margin_fall_window: int = 50
    """Falling: the smoothed margin is lower than it was this many readings ago..."""
    margin_fall_frac: float = 0.5
    """...and has lost at least half of its peak on the way."""
    margin_patience: int = 10
    """Consecutive readings the margin must stay collapsed or falling: a trend, not one bad batch."""
    accuracy_warmup_steps: int = 100
    """Reward-accuracy readings not judged at all: the accuracy starts at chance (at step 1 every margin is
    zero) and with a small learning rate may take a hundred steps to leave it."""
    accuracy_window: int = 100
    """Readings after that warm-up averaged before judging whether the accuracy beats a coin flip."""
    accuracy_band: float = 0.1
    """A mean accuracy within 0.5 +/- this is a coin flip (the mean of 100 readings of 4 pairs has a spread
    of about 0.025 by chance alone, so a model that has learned anything is well outside it)."""
    accuracy_flat_margin: float = 0.01
    """A mean absolute margin below this means the model barely tells the two answers apart at all, whatever
    the accuracy says (TRL's accuracy only compares signs: margins of 1e-5 read as 100%; ties read as 0%)."""
    drift_chosen_nats: float = 20.0
    """KL drift (DPO, KTO): the chosen answers' log-probability fell this far below the reference model's
    (rewards/chosen / beta, summed over the answer's tokens) while the margin stays positive, i.e. the model
    'wins' by making both answers unlikely. Some fall is common in healthy DPO runs, so the bar is high: 20
    nats is 0.2 per token over a 100-token answer, the chosen answer ~500 million times less likely."""
    drift_kl_nats: float = 10.0
    """KL drift (KTO): its logged KL estimate between the model and the reference reached this many nats."""
    drift_patience: int = 10
    """Consecutive readings the drift must last."""
    default_beta: float = 0.1
    """TRL's default beta, used to turn rewards back into log-probabilities when the run's is unknown."""

    # ---- recovery policies ---------------------------------------------------------------------------
    max_rollbacks: int = 3
    """After this many rollbacks Studio recommends stopping instead of looping."""
    lr_factor: float = 0.5
    """Learning-rate multiplier applied on each rollback."""
    default_clip: float = 1.0
    """Gradient clipping threshold switched on when clipping was off."""
    clip_factor: float = 0.5
    """Multiplier applied to an existing clipping threshold to tighten it."""
    min_clip: float = 0.05
    """Clipping is never tightened below this."""
    max_oom_retries: int = 3
    """Out-of-memory retries with a smaller micro-batch before giving up (exit code 3)."""
