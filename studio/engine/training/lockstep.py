"""Keeping every rank of a distributed run on the same branch of the Trainer's loop.

Rank 0 alone hears control commands and runs Studio's callbacks (anomaly guard, early stopping), so only it
knows when training should stop or a checkpoint should be written. If the other ranks did not learn it at
the same step, they would train on and wait in the next gradient exchange until the process group times
out. Two kinds of agreement keep them in step, each a tiny collective that every rank makes at the same
hook:

* between steps (`on_step_begin`, `on_prediction_step`), every rank says what it wants (stop, release, a
  checkpoint) and they all-reduce (MAX): rank 0 brings the user's commands, a follower a signal it caught;
* after a step, a log or an evaluation (`on_step_end`, `on_log`, `on_evaluate`), rank 0's Trainer flags
  (stop, save, evaluate) are broadcast, so a save or stop it decided happens on every rank, and a save it
  cancelled (damaged weights) is cancelled everywhere.

Checkpoints written between steps go through the Trainer's own save path on every rank, so any collective
inside it (FSDP state dicts) stays matched; a barrier then makes sure every rank's files (its RNG state) are
in the folder before rank 0 seals it. Without a process group of two or more ranks all of this is a no-op.
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from types import FrameType
from typing import Any

import torch
import torch.distributed as dist
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from studio.engine.training.interrupted import Outcome, TrainingInterrupted
from studio.engine.training.signals import STOP_SIGNALS, StoppedBeforeTraining

FLAGS = ("should_training_stop", "should_save", "should_evaluate", "should_epoch_stop")
"""The Trainer's control flags that rank 0's callbacks may change and the Trainer acts on."""


@dataclass(frozen=True)
class Requests:
    """What the ranks want between two steps; the same value on every rank once agreed."""

    stop: bool = False
    release: bool = False
    checkpoint: bool = False
    hold: bool = False  # rank 0 is paused: after acting, every rank comes back for another round

    @property
    def interrupt(self) -> Outcome | None:
        """"stopped" or "released" when the loop must end now (a stop outranks a release)."""
        return "stopped" if self.stop else "released" if self.release else None


class Lockstep:
    """The collectives behind the agreement; each one returns its input unchanged when not distributed."""

    def __init__(self) -> None:
        self.signalled: str | None = None  # a follower's caught signal, turned into a stop request
        self.training = False  # set by a follower once its set-up is done and its training loop starts

    @staticmethod
    def active() -> bool:
        return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1

    def agree(self, requests: Requests) -> Requests:
        """Every rank's requests combined (any rank asking is enough)."""
        wanted = [requests.stop or self.signalled is not None, requests.release, requests.checkpoint, requests.hold]
        return Requests(*self._collective(wanted, broadcast=False))

    def follow(self, values: list[bool]) -> list[bool]:
        """Rank 0's values, on every rank."""
        return self._collective(values, broadcast=True)

    def barrier(self) -> None:
        if self.active():
            dist.barrier()

    def finish(self) -> None:
        """Once the training loop has ended on every rank (completed, stopped or released): meet a last time,
        then close the process group on each. A rank that simply exited left its peers' connections to be torn
        down under them, and gloo then aborted a rank as it exited (SIGABRT after `completed`, exit code 1).
        After this, rank 0 saves and reports without any collective."""
        if self.active():
            dist.barrier()
            dist.destroy_process_group()

    def _collective(self, values: list[bool], *, broadcast: bool) -> list[bool]:
        if not self.active():
            return list(values)
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
        tensor = torch.tensor([float(v) for v in values], device=device)
        if broadcast:
            dist.broadcast(tensor, src=0)
        else:
            dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return [bool(v) for v in tensor.tolist()]

    def catch_signals(self) -> None:
        """A follower: SIGTERM/SIGINT/SIGHUP (torchrun forwards them to every rank) ask for a stop at the next
        step instead of killing this rank mid-collective; rank 0 turns the same signal into its own stop.
        Before training (`training` still False) rank 0 ends at once, and so does this rank."""

        def _handler(signum: int, _frame: FrameType | None) -> None:
            self.signalled = signal.Signals(signum).name
            if not self.training:
                raise StoppedBeforeTraining(self.signalled)

        for sig in STOP_SIGNALS:
            signal.signal(sig, _handler)


class LockstepCallback(TrainerCallback):
    """Installed last on every rank: after Studio's callbacks have set rank 0's flags, every rank takes them."""

    def __init__(self, lockstep: Lockstep) -> None:
        self.lockstep = lockstep

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self._follow_flags(control)

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self._follow_flags(control)

    def on_evaluate(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._follow_flags(control)

    def _follow_flags(self, control: TrainerControl) -> None:
        if not self.lockstep.active():
            return
        agreed = self.lockstep.follow([bool(getattr(control, name)) for name in FLAGS])
        for name, value in zip(FLAGS, agreed, strict=True):
            setattr(control, name, value)


class FollowerCallback(LockstepCallback):
    """A follower's side of StudioCallback's between-step decisions: it takes part in the same agreement,
    writes its share of the same checkpoints, and leaves the loop when rank 0 does."""

    def __init__(self, lockstep: Lockstep) -> None:
        super().__init__(lockstep)
        self.trainer: Trainer | None = None  # set once the trainer exists (needed to save between steps)

    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._between_steps()

    def on_prediction_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._between_steps()

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        self.lockstep.barrier()  # rank 0 seals the folder after this barrier

    def _between_steps(self) -> None:
        while True:
            agreed = self.lockstep.agree(Requests())
            if agreed.interrupt or agreed.checkpoint:
                save_in_lockstep(self.trainer, self.lockstep, have_it=False)
            if agreed.interrupt:
                raise TrainingInterrupted(agreed.interrupt, None, self.lockstep.signalled or "rank 0")
            if not agreed.hold:
                return


def save_in_lockstep(trainer: Trainer | None, lockstep: Lockstep, *, have_it: bool) -> bool:
    """Write a checkpoint through the Trainer's own save path on every rank, unless rank 0 `have_it` already
    (its answer rules); returns whether one was written. Rank 0 seals it after this returns."""
    if lockstep.follow([have_it])[0]:
        return False
    assert trainer is not None and trainer.model is not None, "the trainer is set before its loop (and any save)"
    trainer._save_checkpoint(trainer.model, trial=None)
    lockstep.barrier()
    return True
