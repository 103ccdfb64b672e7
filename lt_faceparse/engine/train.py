"""Training: one process or many under torchrun (DistributedDataParallel), resumable, stopped on NaN.

A run folder holds::

    config.yaml                 the effective config (defaults filled, batch split resolved)
    log.jsonl                   one JSON object per logged step, epoch, validation, checkpoint
    checkpoints/ckpt_e*_s*.pt   the newest ``checkpoint.keep_last`` training checkpoints
    final.safetensors           the model after the last epoch (``lt_faceparse.weights`` format)
    val/record.json             the last epoch's model scored on the whole val split
    tb/                         TensorBoard event files (``tensorboard: true``)

Global rank 0 alone writes them (also on several nodes). The reported model is the last epoch's
(``checkpoint_rule: "last epoch"``); the test split is never touched during training.

The trainer is three parts, detectron2/mmengine style: this module's :class:`Trainer` builds the run and
runs the loop (epochs of optimizer steps); :mod:`lt_faceparse.engine.run_state` holds what a checkpoint
holds: where a run starts (fresh, resumed, already finished; :mod:`lt_faceparse.engine.resume`), the
checkpoints, the stop on SIGTERM/SIGUSR1 (:mod:`lt_faceparse.engine.preemption`) and the final weights;
:mod:`lt_faceparse.engine.hooks` does the rest around the loop (long-tail data stages, TensorBoard,
logging and progress, precise BN, validation).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from lt_faceparse.atomic import atomic_write_text
from lt_faceparse.data.build import resolve_num_workers
from lt_faceparse.engine.compile import CompiledOrEager, resolve_compile
from lt_faceparse.engine.config import ConfigError, dump_config, expand_path, resolve_batch, validate_config
from lt_faceparse.engine.config_schema import TrainConfig
from lt_faceparse.engine.distributed import (DistInfo, all_reduce_sum, barrier, init_distributed, launch_environment,
                                             seed_everything, shutdown_distributed)
from lt_faceparse.engine.epoch_loader import EpochLoader
from lt_faceparse.engine.hooks import Hook, StepInfo, default_hooks
from lt_faceparse.engine.longtail_training import LongtailTraining
from lt_faceparse.engine.optim import build_optimizer, is_fused, step_unless
from lt_faceparse.engine.preemption import PreemptionGuard
from lt_faceparse.engine.progress import JsonlLog
from lt_faceparse.engine.resume import log_failed_start
from lt_faceparse.engine.run_state import RunState, StartPoint
from lt_faceparse.engine.runner import BatchRunner
from lt_faceparse.engine.sampling import steps_per_epoch, worker_seed
from lt_faceparse.engine.step_values import StepValues, TrainingDiverged
from lt_faceparse.engine.trainer_setup import build_training_model, set_determinism, training_datasets, warped_size

__all__ = ["Trainer", "TrainingDiverged", "train"]

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def train(config: dict[str, Any] | TrainConfig, *, train_dataset=None, val_dataset=None,
          hooks: Sequence[Hook] = ()) -> Path:
    """Train the model of ``config`` (see :mod:`lt_faceparse.engine.config`) and return the run folder.

    Under torchrun every rank calls this; rank 0 alone writes files. ``train_dataset`` /
    ``val_dataset`` replace the datasets named in ``config["data"]`` (any dataset of
    :class:`~lt_faceparse.data.sample.Sample` with a ``taxonomy``); with ``train_dataset`` given and
    no ``val_dataset``, or with ``data.val_split: null``, the run has no validation.

    Once set up (data, model), SIGTERM and SIGUSR1 make every rank checkpoint the same optimizer step
    and raise :class:`~lt_faceparse.engine.preemption.Preempted` (the handlers in place before are
    restored on return). With ``resume: auto`` a run that already finished returns at once.
    ``hooks`` run after the default ones (:func:`lt_faceparse.engine.hooks.default_hooks`) at each point.
    """
    config = config.to_dict() if isinstance(config, TrainConfig) else config
    validate_config(config)
    joined = not (dist.is_available() and dist.is_initialized())
    info = init_distributed(config["device"])
    flags = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    trainer = None
    try:
        trainer = Trainer(config, info, train_dataset, val_dataset, hooks=hooks)
        with trainer.preemption:
            try:
                return trainer.run()
            except Exception as err:
                if trainer.started:
                    log_failed_start(trainer.log, trainer.out, err)
                raise
    finally:
        if trainer is not None:
            trainer.close()
        if torch.are_deterministic_algorithms_enabled() != flags[0]:
            torch.use_deterministic_algorithms(flags[0])
        torch.backends.cudnn.benchmark = flags[1]
        if joined:
            shutdown_distributed()


class Trainer:
    """One training run: built from its config in ``__init__``, trained by :meth:`run`.

    The hooks (:mod:`lt_faceparse.engine.hooks`) see it whole; besides the parts built here they find
    ``start`` (the :class:`~lt_faceparse.engine.run_state.StartPoint`), ``sampler`` and ``seeded`` (the
    training sampler and dataset, set by the long-tail hook) and ``tensorboard``.
    """

    def __init__(self, config: dict[str, Any], info: DistInfo, train_dataset: Any = None, val_dataset: Any = None,
                 *, hooks: Sequence[Hook] = ()):
        self.config = config
        self.info = info
        self.out = expand_path(config["out"])
        self.preemption = PreemptionGuard()  # entered around run(): signals during setup act as before
        self.global_batch, self.per_gpu, self.accumulation = resolve_batch(config["batch"], info.world_size)
        set_determinism(config, info.device)
        self.train_set, self.val_set = training_datasets(config, info, train_dataset, val_dataset)
        self.taxonomy = self.train_set.taxonomy
        self.longtail = LongtailTraining.from_config(config, self.train_set, info)

        seed_everything(config["seed"])  # identical initial weights on every rank
        self.model, self.model_kwargs = build_training_model(config, info, self.taxonomy.num_classes,
                                                             self.taxonomy.name)
        self.longtail.attach(self.model, info.device)
        self.runner = BatchRunner(self.model, config["data"]["warp"], warped_size=warped_size(config))
        self.net: nn.Module = self.runner
        if info.distributed:
            self.net = DistributedDataParallel(
                self.runner, device_ids=[info.device.index] if info.device.type == "cuda" else None,
                find_unused_parameters=config["find_unused_parameters"])
        # the training forward (compiled per config["compile"]); validation and precise BN run eagerly
        self.train_forward = CompiledOrEager(self.net, resolve_compile(config["compile"], info.device, training=True))
        optim = config["optim"]
        self.optimizer = build_optimizer(self.model.parameters(), optim, info.device)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, milestones=optim["milestones"],
                                                              gamma=optim["gamma"])
        on_cuda = info.device.type == "cuda"
        self.amp_dtype = AMP_DTYPES.get(config["precision"]) if on_cuda else None
        self.scaler = torch.amp.GradScaler("cuda", enabled=on_cuda and config["precision"] == "fp16")
        self.log = JsonlLog(self.out / "log.jsonl", active=info.is_main)
        self.steps = StepValues(defer=is_fused(self.optimizer), log=self.log, out=self.out)
        self.num_workers = resolve_num_workers(config["data"]["num_workers"],
                                               int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
        self.state = RunState(config, info, self.out, self.model, self.optimizer, self.scheduler, self.scaler,
                              self.longtail, self.log, self.steps, self.preemption)
        self.start = StartPoint(0, 0, 0, None)
        self.sampler = self.seeded = None
        self.hooks: list[Hook] = default_hooks(self) + list(hooks)
        self._train_loader: EpochLoader | None = None
        self.started = False  # "start" logged by this process
        seed_everything(config["seed"] + info.rank)  # per-rank randomness from here on (dropout, ...)

    def _call(self, point: str, *args: Any) -> None:
        for hook in self.hooks:
            getattr(hook, point)(self, *args)

    def close(self) -> None:
        """Release what the hooks hold (progress bar, TensorBoard writer); runs on every exit."""
        for hook in self.hooks:
            hook.close()

    # ---- the loop ------------------------------------------------------------------------------------
    def run(self) -> Path:
        start = self.state.resume()
        if start is None:  # resume: auto, and the run already finished
            return self.out
        self.start = start
        self._call("before_train")
        n_steps = self._epoch_steps(start.epoch)
        if n_steps == 0:
            raise ConfigError(f"the training split has {len(self.train_set)} images, fewer than one global "
                              f"batch of {self.global_batch}")
        self._write_start(n_steps)
        epoch, step_in_epoch, global_step = start.epoch, start.step_in_epoch, start.global_step
        epochs = self.config["optim"]["epochs"]
        while epoch < epochs:
            global_step = self._train_epoch(epoch, step_in_epoch, global_step, self._epoch_steps(epoch))
            self.scheduler.step()
            epoch, step_in_epoch = epoch + 1, 0
            self.state.checkpoint(epoch, 0, global_step)
            if self.preemption.stop_now():
                self._close_train_loader()
                self.state.stop(epoch, 0, global_step, saved=True)
            self._call("after_epoch", epoch, global_step)
        self._close_train_loader()
        self._call("after_train", global_step)
        if self.info.is_main:
            self.state.save_final(model_kwargs=self.model_kwargs, train_set=self.train_set,
                                  global_batch=self.global_batch)
        barrier()
        self.log.write("end", epoch=epoch, global_step=global_step)
        return self.out

    def _write_start(self, n_steps: int) -> None:
        """``config.yaml`` (the effective config, batch split resolved) and the ``start`` line of the log."""
        if self.info.is_main:
            effective = {**self.state.effective_config(),
                         "batch": {"global": self.global_batch, "per_gpu": self.per_gpu,
                                   "accumulation": self.accumulation}}
            atomic_write_text(self.out / "config.yaml", dump_config(effective))
        start = self.start
        self.log.write("start", world_size=self.info.world_size, device=str(self.info.device),
                       global_batch=self.global_batch, per_gpu=self.per_gpu, accumulation=self.accumulation,
                       steps_per_epoch=n_steps, train_images=len(self.train_set),
                       resumed_from=str(start.checkpoint) if start.checkpoint else None,
                       epoch=start.epoch, step_in_epoch=start.step_in_epoch, global_step=start.global_step,
                       longtail=self.longtail.describe()["label"], resume=self.config["resume"],
                       **launch_environment())
        self.started = True

    def _close_train_loader(self) -> None:
        """Stop the training loader's worker processes (they persist across epochs otherwise)."""
        if self._train_loader is not None:
            self._train_loader.close()
            self._train_loader = None

    def _epoch_steps(self, epoch: int) -> int:
        """Optimizer steps of ``epoch`` (repeat-factor sampling changes the epoch length)."""
        return steps_per_epoch(self.longtail.epoch_items(self.sampler, epoch), self.info.world_size, self.per_gpu,
                               self.accumulation)

    def _train_epoch(self, epoch: int, start_step: int, global_step: int, n_steps: int) -> int:
        """The remaining steps of ``epoch`` from ``start_step``; returns the global step after them."""
        if self._train_loader is None:  # one loader per run: its workers persist across epochs
            self._train_loader = EpochLoader(self.seeded, self.sampler, self.per_gpu, num_workers=self.num_workers,
                                             seed=worker_seed(self.config["seed"], 0, self.info.rank),
                                             device=self.info.device)
        batches = self._train_loader.epoch(epoch, skip=start_step * self.per_gpu * self.accumulation)
        self.net.train()
        self._call("before_epoch", epoch, start_step, n_steps)
        every_steps = self.config["checkpoint"]["every_steps"]
        for step_in_epoch in range(start_step, n_steps):
            global_step += 1
            self._train_step(batches, epoch, step_in_epoch, global_step)
            self._call("after_step", StepInfo(epoch, step_in_epoch, n_steps, global_step))
            saved = bool(every_steps) and global_step % every_steps == 0 and step_in_epoch + 1 < n_steps
            if saved:
                self.state.checkpoint(epoch, step_in_epoch + 1, global_step)
            if self.preemption.stop_at_this_step() and step_in_epoch + 1 < n_steps:  # (epoch end: see run)
                del batches  # its data-loader workers stop now, not when the exception is freed
                self._close_train_loader()
                self.state.stop(epoch, step_in_epoch + 1, global_step, saved=saved)
        return global_step

    def _train_step(self, batches: Iterator, epoch: int, step_in_epoch: int, global_step: int) -> None:
        """One optimizer step over ``accumulation`` micro-batches. Its global mean loss and gradient norm are
        queued in ``self.steps`` as device tensors (read on the host as :mod:`lt_faceparse.engine.step_values`
        says)."""
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum = torch.zeros((), device=self.info.device)
        for micro in range(self.accumulation):
            batch = next(batches).to(self.info.device, non_blocking=True)
            images = batch.images
            if self.config["channels_last"]:
                images = images.contiguous(memory_format=torch.channels_last)
            last = micro == self.accumulation - 1
            sync = contextlib.nullcontext() if last or not self.info.distributed else self.net.no_sync()
            with sync:
                with torch.autocast(self.info.device.type, dtype=self.amp_dtype or torch.float32,
                                    enabled=self.amp_dtype is not None):
                    loss, _ = self.runner.compute_loss(self.train_forward(images, batch.landmarks), batch.labels)
                self.scaler.scale(loss / self.accumulation).backward()
            loss_sum += loss.detach().float()
        collective = self.info.device if self.info.device.type == "cuda" else torch.device("cpu")
        mean_loss = all_reduce_sum(loss_sum.to(collective)) / (self.accumulation * self.info.world_size)
        grad_norm = None
        if self.config["grad_clip"] is not None:
            self.scaler.unscale_(self.optimizer)
            grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.config["grad_clip"])
        skip = self.steps.add(mean_loss, grad_norm, epoch=epoch, step_in_epoch=step_in_epoch + 1,
                              global_step=global_step)
        step_unless(self.optimizer, self.scaler, skip)
        self.scaler.update()
