"""Per-step training values (loss, gradient norm) kept on the device, and the guard that stops a diverged run.

Reading a CUDA tensor on the host waits for every kernel queued before it, so a ``loss.item()`` per
step leaves the GPU idle while Python prepares the next step. :class:`StepValues` reads the values
only when they are needed, and still never lets a non-finite loss reach the weights:

- **checked every step** (``defer=False``: the CPU, where a read costs nothing, or an optimizer
  that cannot skip an update on the device): each step's loss is read before the update; a
  non-finite one stops the run at once, before the weights change. This is the behaviour of
  every run before deferred reads existed, bit for bit.
- **deferred** (``defer=True``: a fused optimizer, i.e. CUDA; see
  :mod:`lt_faceparse.engine.optim`): nothing is read per step. A flag on the device turns on at
  the first step whose loss (or, with gradient clipping, gradient norm) is not finite and stays
  on; while it is on, the fused optimizer skips every update, so the weights stay those after the
  last finite step. The host reads the values queued since its last read every ``log_every``
  steps, at the end of each epoch and before every checkpoint, and then stops the run, naming the
  first non-finite step. A diverged run therefore computes at most ``log_every - 1`` wasted steps,
  and no checkpoint is written after the first non-finite step. (With fp16, the GradScaler's own
  check decides the skip instead: it skips the steps whose gradients are not finite.)

Either way the run ends with :class:`TrainingDiverged`, whose message names the step and the last
good checkpoint, and a ``diverged`` record in ``log.jsonl``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch

from lt_faceparse.engine.checkpoint import latest_checkpoint
from lt_faceparse.engine.progress import JsonlLog
from lt_faceparse.errors import LTFaceParseError


class TrainingDiverged(LTFaceParseError):
    """The loss became NaN or infinite; the run stopped before updating the weights with it."""


@dataclass
class _Step:
    epoch: int
    step_in_epoch: int  # 1-based position in the epoch
    global_step: int
    loss: torch.Tensor  # 0-dim, on the device
    grad_norm: torch.Tensor | None


class StepValues:
    """The loss and gradient norm of each optimizer step, read on the host in batches (see the module doc).

    Per step, :meth:`add` before the optimizer's update; :meth:`read` where values are needed.
    ``log`` receives the ``diverged`` record; ``out`` is the run folder whose newest checkpoint the
    divergence message names (both optional, for use outside a run).
    After a read, ``last_loss`` / ``last_grad_norm`` are the newest step's values and
    ``epoch_loss_sum`` / ``epoch_steps`` sum the epoch's steps read so far.
    """

    def __init__(self, *, defer: bool, log: JsonlLog | None = None, out: Path | None = None):
        self.defer = defer
        self.log = log
        self.out = out
        self._pending: list[_Step] = []
        self._skip: torch.Tensor | None = None  # deferred: 1.0 from the first non-finite step on
        self.last_loss = math.nan
        self.last_grad_norm: float | None = None
        self.epoch_loss_sum = 0.0
        self.epoch_steps = 0

    def start_epoch(self) -> None:
        self.epoch_loss_sum, self.epoch_steps = 0.0, 0

    def add(self, loss: torch.Tensor, grad_norm: torch.Tensor | None, *, epoch: int, step_in_epoch: int,
            global_step: int) -> torch.Tensor | None:
        """Queue one step's values before its update; returns the device flag the update must skip on
        (deferred), or None after checking the loss on the host (raising :class:`TrainingDiverged`)."""
        step = _Step(epoch, step_in_epoch, global_step, loss.detach(), None if grad_norm is None else grad_norm.detach())
        if not self.defer:
            self._take([step], [float(step.loss)], [None if grad_norm is None else float(step.grad_norm)])
            return None
        bad = ~torch.isfinite(step.loss)
        if step.grad_norm is not None:
            bad = bad | ~torch.isfinite(step.grad_norm)
        self._skip = bad.float() if self._skip is None else torch.maximum(self._skip, bad.float())
        self._pending.append(step)
        return self._skip

    def read(self) -> None:
        """Read the queued values on the host (one transfer); raise :class:`TrainingDiverged` if one is not finite."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        losses = torch.stack([s.loss.float() for s in pending]).tolist()
        norms: list[float | None] = [None] * len(pending)
        with_norm = [i for i, s in enumerate(pending) if s.grad_norm is not None]
        if with_norm:
            values = torch.stack([pending[i].grad_norm.float() for i in with_norm]).tolist()
            for i, v in zip(with_norm, values):
                norms[i] = v
        self._take(pending, losses, norms)

    def _take(self, steps: list[_Step], losses: list[float], norms: list[float | None]) -> None:
        for i, (step, loss, norm) in enumerate(zip(steps, losses, norms)):
            if not math.isfinite(loss) or (norm is not None and not math.isfinite(norm)):
                self._diverged(step, loss, norm, later=steps[i + 1:], last=steps[-1])
            self.epoch_loss_sum += loss
            self.epoch_steps += 1
        self.last_loss, self.last_grad_norm = losses[-1], norms[-1]

    def _diverged(self, step: _Step, loss: float, norm: float | None, later: list[_Step], last: _Step) -> None:
        last_good = latest_checkpoint(self.out) if self.out is not None else None
        what = f"loss is {loss}" if not math.isfinite(loss) else f"gradient norm is {norm}"
        if self.defer:
            stopped = (f"the update was skipped on the device, and so were the {len(later)} later step(s) up to global "
                       f"step {last.global_step}, when the host read the values")
        else:
            stopped = "training stopped before the update"
        if self.log is not None:
            self.log.write("diverged", epoch=step.epoch, step_in_epoch=step.step_in_epoch, step=step.global_step,
                           loss=str(loss), grad_norm=None if norm is None else str(norm),
                           last_good_checkpoint=str(last_good) if last_good else None)
        raise TrainingDiverged(
            f"{what} at epoch {step.epoch}, step {step.step_in_epoch} of the epoch (global step {step.global_step}); "
            f"{stopped}. Last good checkpoint: {last_good if last_good else 'none (nothing was saved yet)'}")
