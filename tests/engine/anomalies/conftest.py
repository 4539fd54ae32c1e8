"""Synthetic, seeded metric streams shaped like real fine-tuning runs, for the anomaly detector tests."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest

from studio.engine.anomalies import AnomalyMonitor, EvalMetrics, Finding, StepMetrics


@dataclass
class Stream:
    """Per-step arrays (index i is step i+1); edit them to inject faults, then replay through a monitor."""

    loss: np.ndarray
    grad_norm: np.ndarray
    tokens_per_s: np.ndarray
    ram_frac: np.ndarray
    gpu_mem_frac: np.ndarray | None
    clean_loss: np.ndarray
    eval_every: int = 100

    @property
    def steps(self) -> int:
        return len(self.loss)

    def metrics(self, i: int) -> StepMetrics:
        gpu = None if self.gpu_mem_frac is None else float(self.gpu_mem_frac[i])
        return StepMetrics(
            step=i + 1,
            loss=float(self.loss[i]),
            grad_norm=float(self.grad_norm[i]),
            lr=2e-4,
            tokens_per_s=float(self.tokens_per_s[i]),
            gpu_mem_frac=gpu,
            ram_frac=float(self.ram_frac[i]),
        )

    def replay(self, monitor: AnomalyMonitor | None = None, evals: bool = True) -> list[Finding]:
        monitor = monitor or AnomalyMonitor()
        found: list[Finding] = []
        for i in range(self.steps):
            found += monitor.observe_step(self.metrics(i))
            if evals and (i + 1) % self.eval_every == 0:
                # held-out loss tracks the clean curve a little higher, as on real data
                found += monitor.observe_eval(
                    EvalMetrics(step=i + 1, eval_loss=float(self.clean_loss[i]) + 0.1)
                )
        return found


def normal_stream(
    seed: int = 0, noise: float = 0.05, multiplicative: bool = False, steps: int = 2000, gpu: bool = False
) -> Stream:
    """A healthy run: loss decaying towards 1.2, noisy gradients and throughput, RAM well below the limit."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, steps + 1)
    clean = 1.2 + 1.8 * np.exp(-t / 900)
    loss = (
        clean * np.exp(rng.normal(0, noise, steps)) if multiplicative else clean + rng.normal(0, noise, steps)
    )
    grad = (0.5 + 1.5 * np.exp(-t / 300)) * np.exp(rng.normal(0, 0.3, steps))
    tps = 150 * np.exp(rng.normal(0, 0.15, steps))
    ram = 0.55 + 0.1 * rng.random(steps)
    gpu_frac = 0.6 + 0.1 * rng.random(steps) if gpu else None
    return Stream(
        loss=loss, grad_norm=grad, tokens_per_s=tps, ram_frac=ram, gpu_mem_frac=gpu_frac, clean_loss=clean
    )


@pytest.fixture
def make_stream() -> Callable[..., Stream]:
    return normal_stream
