"""AnomalyMonitor: feeds the metrics stream to every detector, de-duplicates alerts and keeps the record.

The worker (or a Trainer callback) calls observe_step after each logged step and observe_eval after each
evaluation; both return the new findings only. A step number that goes backwards means the run was rolled
back to a checkpoint: the monitor rewinds its detectors and cooldowns to that step on its own, so the
replayed steps are judged against the baseline from before the trouble, and a repeat of the trouble is
reported again (which is how the rollback limit can ever be reached).

Preference runs (DPO, ORPO, KTO) also get the reward rules: collapsing margins, accuracy at chance and, for
the objectives with a reference model (DPO, KTO), drift away from it. `use_objective` switches them on; an
SFT run never has them, whatever its logs hold.
"""

from __future__ import annotations

from studio.engine.anomalies.detectors import (
    AccuracyAtChanceDetector,
    DivergenceDetector,
    EvalDetector,
    GradExplosionDetector,
    KLDriftDetector,
    MarginCollapseDetector,
    MemoryPressureDetector,
    NonFiniteDetector,
    OverfitDetector,
    PlateauDetector,
    SpikeDetector,
    StepDetector,
    ThroughputDetector,
)
from studio.engine.anomalies.records import (
    PREFERENCE_OBJECTIVES,
    REFERENCE_OBJECTIVES,
    EvalMetrics,
    Finding,
    StepMetrics,
    finite,
)
from studio.engine.anomalies.thresholds import Thresholds


class AnomalyMonitor:
    def __init__(self, thresholds: Thresholds | None = None, objective: str = "sft",
                 beta: float | None = None) -> None:
        self.thresholds = thresholds or Thresholds()
        t = self.thresholds
        self._non_finite = NonFiniteDetector()
        self._overfit = OverfitDetector(t)
        self.step_detectors: list[StepDetector] = [
            self._non_finite,
            SpikeDetector(t),
            DivergenceDetector(t),
            GradExplosionDetector(t),
            PlateauDetector(t),
            MemoryPressureDetector(t),
            ThroughputDetector(t),
        ]
        self.eval_detectors: list[EvalDetector] = [self._non_finite, self._overfit]
        self.history: list[Finding] = []
        self._last_fired: dict[str, int] = {}
        self._last_step: int | None = None
        self.last_train_loss: float | None = None
        self.objective = "sft"
        self.preference_detectors: list[StepDetector] = []
        self.use_objective(objective, beta)

    def use_objective(self, objective: str, beta: float | None = None) -> None:
        """Switch the preference rules on (dpo, orpo, kto) or off (sft). Calling it again with the same
        objective keeps what the detectors have seen (the Trainer after a rollback is the same run)."""
        if objective == self.objective and (self.preference_detectors or objective not in PREFERENCE_OBJECTIVES):
            return
        self.objective = objective
        t = self.thresholds
        detectors: list[StepDetector] = []
        if objective in PREFERENCE_OBJECTIVES:
            detectors = [MarginCollapseDetector(t), AccuracyAtChanceDetector(t)]
            if objective in REFERENCE_OBJECTIVES:
                detectors.append(KLDriftDetector(t, beta))
        self.step_detectors = [d for d in self.step_detectors if d not in self.preference_detectors] + detectors
        self.preference_detectors = detectors

    @property
    def best_eval(self) -> EvalMetrics | None:
        """The evaluation with the lowest held-out loss so far (what early stopping restores)."""
        return self._overfit.best

    def observe_step(self, metrics: StepMetrics) -> list[Finding]:
        self._advance(metrics.step)
        loss = finite(metrics.loss)
        if loss is not None:
            self.last_train_loss = loss
        return self._keep([d.observe_step(metrics) for d in self.step_detectors])

    def observe_eval(self, metrics: EvalMetrics) -> list[Finding]:
        if metrics.train_loss is None and self.last_train_loss is not None:
            metrics = EvalMetrics(metrics.step, metrics.eval_loss, self.last_train_loss)
        return self._keep([d.observe_eval(metrics) for d in self.eval_detectors])

    def rewind(self, step: int) -> None:
        """Forget everything seen at or after `step`: the run is going back to a checkpoint at step-1."""
        for step_detector in self.step_detectors:
            step_detector.rewind(step)
        for eval_detector in self.eval_detectors:
            eval_detector.rewind(step)
        self._last_fired = {kind: fired for kind, fired in self._last_fired.items() if fired < step}
        self._last_step = step - 1

    def _advance(self, step: int) -> None:
        if self._last_step is not None and step <= self._last_step:
            self.rewind(step)
        self._last_step = step

    def _keep(self, candidates: list[Finding | None]) -> list[Finding]:
        """Drop findings whose kind already fired within the cooldown; record the rest."""
        kept: list[Finding] = []
        for finding in candidates:
            if finding is None:
                continue
            last = self._last_fired.get(finding.kind)
            if last is not None and finding.step - last < self.thresholds.cooldown_steps:
                continue
            self._last_fired[finding.kind] = finding.step
            kept.append(finding)
        self.history.extend(kept)
        return kept
