"""Training hooks: what happens around the loop of :class:`lt_faceparse.engine.train.Trainer`, detectron2/mmengine
style.

The loop calls every hook of ``Trainer.hooks``, in list order, at five points:

- ``before_train``: after the run state is restored (fresh or resumed), before the first step;
- ``before_epoch(epoch, start_step, n_steps)``: before the epoch's first (or first remaining) step;
- ``after_step(step)``: after each optimizer step (:class:`StepInfo`);
- ``after_epoch(epoch, global_step)``: after the schedule advanced and the epoch's checkpoint was written
  (a hook sees the state a resume would start from); ``epoch`` counts the epochs done;
- ``after_train(global_step)``: after the last epoch, before the final weights are saved.

``close()`` runs on every exit, also on an error or a preemption. A hook must not draw from the
global random generators out of turn: the order of the draws is part of a run's bit-for-bit result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from lt_faceparse import __version__
from lt_faceparse.data import make_loader
from lt_faceparse.engine.distributed import all_reduce_sum
from lt_faceparse.engine.evaluate import evaluate_model
from lt_faceparse.engine.gradients import gradient_norm
from lt_faceparse.engine.progress import EpochProgress
from lt_faceparse.engine.run_state import CHECKPOINT_RULE, FINAL_WEIGHTS, pretraining
from lt_faceparse.engine.sampling import EpochSeededDataset, ResumableDistributedSampler, worker_seed
from lt_faceparse.engine.tensorboard import TensorBoardLog
from lt_faceparse.records import save_record

if TYPE_CHECKING:  # the trainer imports this module
    from lt_faceparse.engine.train import Trainer


@dataclass(frozen=True)
class StepInfo:
    """One optimizer step as the hooks see it: 0-based ``step_in_epoch`` of ``n_steps``, 1-based ``global_step``."""

    epoch: int
    step_in_epoch: int
    n_steps: int
    global_step: int

    @property
    def last_of_epoch(self) -> bool:
        return self.step_in_epoch + 1 == self.n_steps


class Hook:
    """Base class: every point does nothing."""

    def before_train(self, trainer: "Trainer") -> None:
        """After the run state is restored, before the first step."""

    def before_epoch(self, trainer: "Trainer", epoch: int, start_step: int, n_steps: int) -> None:
        """Before the first (remaining) step of ``epoch``."""

    def after_step(self, trainer: "Trainer", step: StepInfo) -> None:
        """After the optimizer step ``step``."""

    def after_epoch(self, trainer: "Trainer", epoch: int, global_step: int) -> None:
        """After ``epoch`` epochs are done, scheduled and checkpointed."""

    def after_train(self, trainer: "Trainer", global_step: int) -> None:
        """After the last epoch, before the final weights are saved."""

    def close(self) -> None:
        """Release what the hook holds; runs on every exit."""


class LongtailHook(Hook):
    """The long-tail remedies' data stages: the training sampler (uniform or repeat-factor) and the dataset
    each epoch draws from (with copy-paste when configured), seeded per epoch."""

    def before_train(self, trainer: "Trainer") -> None:
        trainer.sampler = trainer.longtail.make_sampler(trainer.train_set, num_replicas=trainer.info.world_size,
                                                        rank=trainer.info.rank, seed=trainer.config["seed"])
        trainer.seeded = EpochSeededDataset(trainer.longtail.wrap_dataset(trainer.train_set), trainer.config["seed"])


class TensorBoardHook(Hook):
    """Opens ``RUN/tb`` (global rank 0, ``tensorboard: true``) once the start step is known, flushes it after
    each epoch, closes it on exit. Steps and validations write their scalars through ``trainer.tensorboard``."""

    def __init__(self, trainer: "Trainer"):
        self.trainer = trainer
        trainer.tensorboard = TensorBoardLog(trainer.out, active=False)  # opened in before_train, once resumed

    def before_train(self, trainer: "Trainer") -> None:
        trainer.tensorboard = TensorBoardLog(trainer.out, active=trainer.info.is_main and trainer.config["tensorboard"],
                                             first_step=trainer.start.global_step + 1)

    def after_epoch(self, trainer: "Trainer", epoch: int, global_step: int) -> None:
        trainer.tensorboard.flush()

    def close(self) -> None:
        self.trainer.tensorboard.close()


class LoggingHook(Hook):
    """The progress bar, the ``step`` lines of ``log.jsonl`` (every ``log_every`` steps, with their
    TensorBoard scalars) and each epoch's ``epoch`` line. Reads the step values on the host only where
    :mod:`lt_faceparse.engine.step_values` allows it (which also stops a diverged run)."""

    def __init__(self, *, enabled: bool):
        self.progress = EpochProgress(enabled=enabled)
        self.entered = False
        self.epoch_start = self.interval_start = 0.0
        self.interval_steps = 0

    def before_train(self, trainer: "Trainer") -> None:
        self.progress.__enter__()
        self.entered = True

    def before_epoch(self, trainer: "Trainer", epoch: int, start_step: int, n_steps: int) -> None:
        self.progress.start_epoch(epoch, n_steps, start_step)
        trainer.steps.start_epoch()
        self.epoch_start = self.interval_start = time.perf_counter()
        self.interval_steps = 0

    def after_step(self, trainer: "Trainer", step: StepInfo) -> None:
        self.interval_steps += 1
        log_now = step.global_step % trainer.config["log_every"] == 0
        if log_now or not trainer.steps.defer or step.last_of_epoch:
            trainer.steps.read()  # the host waits for the device here only; raises TrainingDiverged
            now = time.perf_counter()
            images_per_s = self.interval_steps * trainer.global_batch / max(now - self.interval_start, 1e-9)
            self.progress.step(trainer.steps.last_loss, images_per_s, advance=self.interval_steps)
            self.interval_start, self.interval_steps = now, 0
            if log_now:
                self._log_step(trainer, step, images_per_s)
        if step.last_of_epoch:
            self._log_epoch(trainer, step)

    def _log_step(self, trainer: "Trainer", step: StepInfo, images_per_s: float) -> None:
        """A ``step`` line in log.jsonl and the TensorBoard scalars, from the values just read."""
        grad_norm = trainer.steps.last_grad_norm
        if grad_norm is None:  # no grad_clip: the norm of this step's gradients, computed at log steps only
            norm = gradient_norm(trainer.model.parameters())
            grad_norm = None if norm is None else float(norm)
        lr = trainer.scheduler.get_last_lr()[0]
        trainer.log.write("step", epoch=step.epoch, step=step.global_step, loss=trainer.steps.last_loss, lr=lr,
                          images_per_s=round(images_per_s, 2), grad_norm=grad_norm)
        trainer.tensorboard.train_step(step.global_step, loss=trainer.steps.last_loss, lr=lr,
                                       images_per_s=images_per_s, grad_norm=grad_norm)

    def _log_epoch(self, trainer: "Trainer", step: StepInfo) -> None:
        """The ``epoch`` line: the epoch's steps, mean loss, learning rate (before the schedule advances), speed."""
        elapsed = time.perf_counter() - self.epoch_start
        epoch_steps = trainer.steps.epoch_steps
        trainer.log.write("epoch", epoch=step.epoch, step=step.global_step, steps=epoch_steps,
                          loss=trainer.steps.epoch_loss_sum / max(epoch_steps, 1),
                          lr=trainer.scheduler.get_last_lr()[0], seconds=round(elapsed, 3),
                          images_per_s=round(epoch_steps * trainer.global_batch / elapsed, 2))

    def after_train(self, trainer: "Trainer", global_step: int) -> None:
        self.close()

    def close(self) -> None:
        if self.entered:
            self.entered = False
            self.progress.__exit__(None, None, None)


class PreciseBNHook(Hook):
    """Re-estimate the BatchNorm running statistics of the final weights ("precise BN").

    Over ``precise_bn_batches`` training batches per rank (a fresh permutation), each batch's
    statistics count equally (``momentum=None``); the result is averaged over ranks. Weights
    are untouched. Short from-scratch runs need it: torchvision's MobileNetV3 uses BN momentum
    0.01, so after a few hundred steps its running statistics still lag the weights.
    """

    def after_train(self, trainer: "Trainer", global_step: int) -> None:
        n = trainer.config["precise_bn_batches"]
        norms = [m for m in trainer.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not n or not norms:
            return
        loader = self._loader(trainer)
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches
        trainer.runner.train()
        with torch.no_grad():
            for _, batch in zip(range(n), loader):
                batch = batch.to(trainer.info.device)
                trainer.runner(batch.images, batch.landmarks)
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
            for buffer in (m.running_mean, m.running_var):
                buffer.copy_(all_reduce_sum(buffer.clone()) / trainer.info.world_size)
        trainer.log.write("precise_bn", batches=min(n, len(loader)), layers=len(norms))

    @staticmethod
    def _loader(trainer: "Trainer"):
        """Training batches in the permutation of the epoch after the last one."""

        epochs, seed, info = trainer.config["optim"]["epochs"], trainer.config["seed"], trainer.info
        sampler = ResumableDistributedSampler(trainer.train_set, num_replicas=info.world_size, rank=info.rank,
                                              shuffle=True, seed=seed)
        sampler.set_epoch(epochs)
        trainer.seeded.set_epoch(epochs)
        return make_loader(trainer.seeded, trainer.per_gpu, shuffle=False, num_workers=trainer.num_workers,
                           sampler=sampler, drop_last=True, seed=worker_seed(seed, epochs, info.rank))


class ClassifierStageHook(Hook):
    """The decoupled second stage (cRT/LWS, ``longtail.retrain_classifier``): after the normal schedule and
    precise BN, before the final validation and the final weights; nothing when the key is unset."""

    def after_train(self, trainer: "Trainer", global_step: int) -> None:
        trainer.longtail.run_classifier_stage(trainer.model, trainer.runner, trainer.config, batch_size=trainer.per_gpu,
                                              device=trainer.info.device, num_workers=trainer.num_workers,
                                              log=trainer.log)


class ValidationHook(Hook):
    """Scores the model on the whole val split every ``val.every_epochs`` epochs (a ``val`` line and
    TensorBoard scalars) and after the last one, whose record is saved as ``RUN/val/record.json``."""

    def after_epoch(self, trainer: "Trainer", epoch: int, global_step: int) -> None:
        every, epochs = trainer.config["val"]["every_epochs"], trainer.config["optim"]["epochs"]
        if trainer.val_set is not None and epoch < epochs and every and epoch % every == 0:
            self.validate(trainer, epoch, save=False, step=global_step)

    def after_train(self, trainer: "Trainer", global_step: int) -> None:
        if trainer.val_set is not None:
            self.validate(trainer, trainer.config["optim"]["epochs"], save=True, step=global_step)

    @staticmethod
    def validate(trainer: "Trainer", epoch: int, *, save: bool, step: int) -> None:
        record = evaluate_model(trainer.runner, trainer.val_set, protocol=trainer.config["val"]["protocol"],
                                batch_size=trainer.config["val"]["batch_size"], device=trainer.info.device,
                                provenance=provenance(trainer, epoch), num_workers=trainer.num_workers,
                                show_progress=False)
        trainer.log.write("val", epoch=epoch, split=getattr(trainer.val_set, "split", None),
                          num_images=record.num_images, mean_f1=record.mean_f1,
                          mean_iou_with_bg=record.mean_iou_with_bg, mean_iou_without_bg=record.mean_iou_without_bg,
                          pixel_accuracy=record.pixel_accuracy)
        trainer.tensorboard.validation(step, record, trainer.taxonomy)
        if save and trainer.info.is_main:

            save_record(record, trainer.out / "val")


def provenance(trainer: "Trainer", epoch: int) -> dict[str, Any]:
    """The provenance of a validation record of the model after ``epoch`` epochs."""
    config, kwargs = trainer.config, trainer.model_kwargs
    return {
        "model": config["model"]["name"],
        "backbone": kwargs.get("backbone"),
        "weights": str(trainer.out / FINAL_WEIGHTS),
        "checkpoint_rule": CHECKPOINT_RULE if epoch == config["optim"]["epochs"] else f"epoch {epoch}",
        "pretraining": pretraining(kwargs),
        "reported": False,
        "source": f"trained with lt-faceparse {__version__}",
        "longtail": trainer.longtail.describe(),
    }


def default_hooks(trainer: "Trainer") -> list[Hook]:
    """The hooks of every run, in the order they are called."""
    return [LongtailHook(), TensorBoardHook(trainer), LoggingHook(enabled=trainer.info.is_main), PreciseBNHook(),
            ClassifierStageHook(), ValidationHook()]
