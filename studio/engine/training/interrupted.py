"""The signal that ends the Trainer's loop early on purpose: a stop or a release the user (or rank 0) asked for.

Its own module because both sides of the loop raise it (StudioCallback on rank 0, the lockstep's
FollowerCallback on the other ranks) and the recipe and the follower catch it.
"""

from __future__ import annotations

from typing import Literal

from studio.engine.training.checkpoints import CheckpointInfo

Outcome = Literal["stopped", "released"]


class TrainingInterrupted(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised out of the Trainer's loop when the user stops or releases a run; carries what happened."""

    def __init__(self, outcome: Outcome, checkpoint: CheckpointInfo | None, reason: str) -> None:
        super().__init__(outcome)
        self.outcome: Outcome = outcome
        self.checkpoint = checkpoint
        self.reason = reason
