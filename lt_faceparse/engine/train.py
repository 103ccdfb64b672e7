"""Training: one process or many under torchrun (DistributedDataParallel), resumable, stopped on NaN.

A run folder holds::

    config.yaml                 the effective config (defaults filled, batch split resolved)
    log.jsonl                   one JSON object per logged step, epoch, validation, checkpoint
    checkpoints/ckpt_e*_s*.pt   the newest ``checkpoint.keep_last`` training checkpoints
    final.safetensors           the model after the last epoch (``lt_faceparse.weights`` format)
    val/record.json             the last epoch's model scored on the whole val split
    tb/                         TensorBoard event files (``tensorboard: true``)

Global rank 0 alone writes them (also on several nodes). The reported model is the last epoch's
(``checkpoint_rule: "last epoch"``); the test split is never touched during training. Where a run
starts (fresh, resumed, already finished) is decided by :mod:`lt_faceparse.engine.resume`;
SIGTERM/SIGUSR1 checkpoint the current step and stop the run (:mod:`lt_faceparse.engine.preemption`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any, NoReturn

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from lt_faceparse import __version__
from lt_faceparse.atomic import atomic_write_text
from lt_faceparse.data.build import resolve_num_workers
from lt_faceparse.engine.checkpoint import (CHECKPOINT_DIR, capture_rng, checkpoint_name, latest_checkpoint,
                                            restore_rng, restore_scheduler, save_checkpoint, scheduler_state)
from lt_faceparse.engine.compile import CompiledOrEager, resolve_compile
from lt_faceparse.engine.config import (DEFAULTS, ConfigError, dump_config, expand_path, merge_dicts, resolve_batch,
                                        validate_config)
from lt_faceparse.engine.distributed import (DistInfo, all_gather_objects, all_reduce_sum, barrier,
                                             init_distributed, launch_environment, rank0_first_then_each_node,
                                             seed_everything, shutdown_distributed)
from lt_faceparse.engine.epoch_loader import EpochLoader
from lt_faceparse.engine.gradients import gradient_norm
from lt_faceparse.engine.optim import build_optimizer, is_fused, step_unless
from lt_faceparse.engine.preemption import Preempted, PreemptionGuard, exit_code_for
from lt_faceparse.engine.progress import EpochProgress, JsonlLog
from lt_faceparse.engine.resume import agree_on_resume
from lt_faceparse.engine.runner import BatchRunner
from lt_faceparse.engine.sampling import EpochSeededDataset, ResumableDistributedSampler, steps_per_epoch, worker_seed
from lt_faceparse.engine.step_values import StepValues, TrainingDiverged
from lt_faceparse.engine.tensorboard import TensorBoardLog
from lt_faceparse.errors import LTFaceParseError
from lt_faceparse.longtail.training import LongtailTraining

_LOG = logging.getLogger(__name__)

CHECKPOINT_RULE = "last epoch"
FINAL_WEIGHTS = "final.safetensors"
AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
# config keys that may differ between a checkpoint and the run resuming it (the rest must match)
RESUMABLE_CHANGES = frozenset({"out", "resume", "device", "log_every", "checkpoint", "val", "data.root",
                               "data.num_workers", "batch.per_gpu", "batch.accumulation", "channels_last",
                               "compile", "formulation", "tensorboard"})


def train(config: dict[str, Any], *, train_dataset=None, val_dataset=None) -> Path:
    """Train the model of ``config`` (see :mod:`lt_faceparse.engine.config`) and return the run folder.

    Under torchrun every rank calls this; rank 0 alone writes files. ``train_dataset`` /
    ``val_dataset`` replace the datasets named in ``config["data"]`` (any dataset of
    :class:`~lt_faceparse.data.sample.Sample` with a ``taxonomy``); with ``train_dataset`` given and
    no ``val_dataset``, or with ``data.val_split: null``, the run has no validation.

    Once set up (data, model), SIGTERM and SIGUSR1 make every rank checkpoint the same optimizer step
    and raise :class:`~lt_faceparse.engine.preemption.Preempted` (the handlers in place before are
    restored on return). With ``resume: auto`` a run that already finished returns at once.
    """
    validate_config(config)
    joined = not (dist.is_available() and dist.is_initialized())
    info = init_distributed(config["device"])
    flags = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.benchmark)
    trainer = None
    try:
        trainer = _Trainer(config, info, train_dataset, val_dataset)
        with trainer.preemption:
            return trainer.run()
    finally:
        if trainer is not None:
            trainer.tensorboard.close()
        if torch.are_deterministic_algorithms_enabled() != flags[0]:
            torch.use_deterministic_algorithms(flags[0])
        torch.backends.cudnn.benchmark = flags[1]
        if joined:
            shutdown_distributed()


class _Trainer:
    def __init__(self, config: dict[str, Any], info: DistInfo, train_dataset, val_dataset):
        self.config = config
        self.info = info
        self.out = expand_path(config["out"])
        self.preemption = PreemptionGuard()  # entered around run(): signals during setup act as before
        self.tensorboard = TensorBoardLog(self.out, active=False)  # opened in run(), once resumed
        self.global_batch, self.per_gpu, self.accumulation = resolve_batch(config["batch"], info.world_size)
        self._set_determinism()
        self.train_set, self.val_set = self._datasets(train_dataset, val_dataset)
        self.taxonomy = self.train_set.taxonomy
        self.longtail = LongtailTraining.from_config(config, self.train_set, info)

        seed_everything(config["seed"])  # identical initial weights on every rank
        self.model, self.model_kwargs = self._build_model()
        self.longtail.attach(self.model, info.device)
        self.runner = BatchRunner(self.model, config["data"]["warp"], warped_size=self._warped_size())
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
        self._train_loader: EpochLoader | None = None
        seed_everything(config["seed"] + info.rank)  # per-rank randomness from here on (dropout, ...)

    # ---- setup -------------------------------------------------------------------------------------
    def _warped_size(self) -> int:
        """Side of the tanh-warped frame: the network input resolution."""
        resolution = self.config["data"]["resolution"]
        if self.config["data"]["warp"] is not None and resolution is None:
            raise ConfigError("data.warp needs data.resolution (the side of the warped frame)")
        return resolution or 512

    def _set_determinism(self) -> None:
        if self.config["deterministic"]:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            if not torch.are_deterministic_algorithms_enabled():
                torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        elif self.info.device.type == "cuda":
            torch.backends.cudnn.benchmark = True

    def _datasets(self, train_dataset, val_dataset):
        data = self.config["data"]
        if train_dataset is None:
            from lt_faceparse.data import build_dataset

            root = self._data_root()
            common = dict(resolution=data["resolution"], merge=data["merge"])
            train_dataset = build_dataset(data["dataset"], root, data["train_split"], train=data["augment"],
                                          flip=data["flip"], **common)
            if val_dataset is None and data["val_split"] is not None:
                val_dataset = build_dataset(data["dataset"], root, data["val_split"], train=False, **common)
                _check_not_test(val_dataset, build_dataset, data["dataset"], root, common)
        if val_dataset is not None and getattr(val_dataset, "split", None) == "test":
            raise ConfigError("validation during training never uses the test split")
        if val_dataset is not None and val_dataset.taxonomy.name != train_dataset.taxonomy.name:
            raise ConfigError(f"train taxonomy {train_dataset.taxonomy.name!r} != val taxonomy "
                             f"{val_dataset.taxonomy.name!r}")
        return train_dataset, val_dataset

    def _data_root(self) -> Path:
        data = self.config["data"]
        root = expand_path(data["root"])
        if data["synthetic"] is None:
            return root
        from lt_faceparse.data.synthetic import ensure_synthface

        spec = dict(fmt=data["dataset"], **data["synthetic"])
        # generated once on a shared filesystem, once per node on node-local ones; never twice at once
        return Path(rank0_first_then_each_node(lambda: ensure_synthface(root, **spec), self.info))

    def _build_model(self) -> tuple[nn.Module, dict[str, Any]]:
        from lt_faceparse.models import build_model

        spec = self.config["model"]
        kwargs = dict(spec["kwargs"])
        k = self.taxonomy.num_classes
        if kwargs.setdefault("num_classes", k) != k:
            raise ConfigError(f"model.kwargs.num_classes={kwargs['num_classes']} but taxonomy "
                             f"{self.taxonomy.name!r} has {k} classes")
        model = build_model(spec["name"], **kwargs)
        for attr in ("loss", "build_kwargs"):
            if not hasattr(model, attr):
                raise ConfigError(f"model {spec['name']!r} lacks {attr!r} (see lt_faceparse.models)")
        if self.config["formulation"] != "auto":
            if not hasattr(model, "formulation"):
                raise ConfigError(f"formulation={self.config['formulation']!r}: model {spec['name']!r} has only one")
            model.formulation = self.config["formulation"]
        if self.config["sync_bn"] and self.info.distributed:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model.to(self.info.device)
        if self.config["channels_last"]:
            model.to(memory_format=torch.channels_last)
        return model, dict(model.build_kwargs)

    # ---- run -----------------------------------------------------------------------------------------
    def run(self) -> Path:
        epochs = self.config["optim"]["epochs"]
        start = self._resume()
        if start is None:  # resume: auto, and the run already finished
            return self.out
        epoch, step_in_epoch, global_step, resumed_from = start
        self.tensorboard = TensorBoardLog(self.out, active=self.info.is_main and self.config["tensorboard"],
                                          first_step=global_step + 1)
        sampler = self.longtail.make_sampler(self.train_set, num_replicas=self.info.world_size, rank=self.info.rank,
                                             seed=self.config["seed"])
        n_steps = self._epoch_steps(sampler, epoch)
        if n_steps == 0:
            raise ConfigError(f"the training split has {len(self.train_set)} images, fewer than one global "
                             f"batch of {self.global_batch}")
        if self.info.is_main:
            effective = {**self.effective_config(), "batch": {"global": self.global_batch, "per_gpu": self.per_gpu,
                                                              "accumulation": self.accumulation}}
            atomic_write_text(self.out / "config.yaml", dump_config(effective))
        self.log.write("start", world_size=self.info.world_size, device=str(self.info.device),
                       global_batch=self.global_batch, per_gpu=self.per_gpu, accumulation=self.accumulation,
                       steps_per_epoch=n_steps, train_images=len(self.train_set),
                       resumed_from=str(resumed_from) if resumed_from else None,
                       epoch=epoch, step_in_epoch=step_in_epoch, global_step=global_step,
                       longtail=self.longtail.describe()["label"], resume=self.config["resume"],
                       **launch_environment())
        seeded = EpochSeededDataset(self.longtail.wrap_dataset(self.train_set), self.config["seed"])
        with EpochProgress(enabled=self.info.is_main) as progress:
            while epoch < epochs:
                n_steps = self._epoch_steps(sampler, epoch)
                global_step = self._train_epoch(epoch, step_in_epoch, global_step, n_steps, sampler, seeded,
                                                progress)
                self.scheduler.step()
                epoch, step_in_epoch = epoch + 1, 0
                self._checkpoint(epoch, 0, global_step)
                if self.preemption.stop_now():
                    self._close_train_loader()
                    self._stop(epoch, 0, global_step, saved=True)
                every = self.config["val"]["every_epochs"]
                if self.val_set is not None and epoch < epochs and every and epoch % every == 0:
                    self._validate(epoch, save=False, step=global_step)
                self.tensorboard.flush()
        self._close_train_loader()
        self._precise_bn(seeded)
        self.longtail.run_classifier_stage(self.model, self.runner, self.config, batch_size=self.per_gpu,
                                           device=self.info.device, num_workers=self.num_workers, log=self.log)
        if self.val_set is not None:
            self._validate(epochs, save=True, step=global_step)
        if self.info.is_main:
            self._save_final()
        barrier()
        self.log.write("end", epoch=epoch, global_step=global_step)
        return self.out

    def effective_config(self) -> dict[str, Any]:
        """The config as this run resolved it: the ``longtail`` section with every setting expanded and the
        priors used inline. ``config.yaml`` and checkpoints store it, and a resume compares against it."""
        return {**self.config, "longtail": self.longtail.config_section()}

    def _close_train_loader(self) -> None:
        """Stop the training loader's worker processes (they persist across epochs otherwise)."""
        if self._train_loader is not None:
            self._train_loader.close()
            self._train_loader = None

    def _log_step(self, epoch: int, global_step: int, images_per_s: float) -> None:
        """A ``step`` line in log.jsonl and the TensorBoard scalars, from the values just read."""
        grad_norm = self.steps.last_grad_norm
        if grad_norm is None:  # no grad_clip: the norm of this step's gradients, computed at log steps only
            norm = gradient_norm(self.model.parameters())
            grad_norm = None if norm is None else float(norm)
        lr = self.scheduler.get_last_lr()[0]
        self.log.write("step", epoch=epoch, step=global_step, loss=self.steps.last_loss, lr=lr,
                       images_per_s=round(images_per_s, 2), grad_norm=grad_norm)
        self.tensorboard.train_step(global_step, loss=self.steps.last_loss, lr=lr, images_per_s=images_per_s,
                                    grad_norm=grad_norm)

    def _epoch_steps(self, sampler, epoch: int) -> int:
        """Optimizer steps of ``epoch`` (repeat-factor sampling changes the epoch length)."""
        return steps_per_epoch(self.longtail.epoch_items(sampler, epoch), self.info.world_size, self.per_gpu,
                               self.accumulation)

    def _train_epoch(self, epoch: int, start_step: int, global_step: int, n_steps: int,
                     sampler: ResumableDistributedSampler, seeded: EpochSeededDataset,
                     progress: EpochProgress) -> int:
        if self._train_loader is None:  # one loader per run: its workers persist across epochs
            self._train_loader = EpochLoader(seeded, sampler, self.per_gpu, num_workers=self.num_workers,
                                             seed=worker_seed(self.config["seed"], 0, self.info.rank),
                                             device=self.info.device)
        batches = self._train_loader.epoch(epoch, skip=start_step * self.per_gpu * self.accumulation)
        self.net.train()
        progress.start_epoch(epoch, n_steps, start_step)
        self.steps.start_epoch()
        epoch_start = interval_start = time.perf_counter()
        interval_steps = 0
        every_steps = self.config["checkpoint"]["every_steps"]
        for step_in_epoch in range(start_step, n_steps):
            self._train_step(batches, epoch, step_in_epoch, global_step + 1)
            global_step, interval_steps = global_step + 1, interval_steps + 1
            log_now = global_step % self.config["log_every"] == 0
            if log_now or not self.steps.defer or step_in_epoch + 1 == n_steps:
                self.steps.read()  # the host waits for the device here only; raises TrainingDiverged
                now = time.perf_counter()
                images_per_s = interval_steps * self.global_batch / max(now - interval_start, 1e-9)
                progress.step(self.steps.last_loss, images_per_s, advance=interval_steps)
                interval_start, interval_steps = now, 0
                if log_now:
                    self._log_step(epoch, global_step, images_per_s)
            saved = bool(every_steps) and global_step % every_steps == 0 and step_in_epoch + 1 < n_steps
            if saved:
                self._checkpoint(epoch, step_in_epoch + 1, global_step)
            if self.preemption.stop_at_this_step() and step_in_epoch + 1 < n_steps:  # (epoch end: see run)
                del batches  # its data-loader workers stop now, not when the exception is freed
                self._close_train_loader()
                self._stop(epoch, step_in_epoch + 1, global_step, saved=saved)
        elapsed = time.perf_counter() - epoch_start
        epoch_steps = self.steps.epoch_steps
        self.log.write("epoch", epoch=epoch, step=global_step, steps=epoch_steps,
                       loss=self.steps.epoch_loss_sum / max(epoch_steps, 1), lr=self.scheduler.get_last_lr()[0],
                       seconds=round(elapsed, 3), images_per_s=round(epoch_steps * self.global_batch / elapsed, 2))
        return global_step

    def _train_step(self, batches, epoch: int, step_in_epoch: int,
                    global_step: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One optimizer step over ``accumulation`` micro-batches; returns (global mean loss, grad norm) as
        detached device tensors, queued in ``self.steps`` (read on the host every ``log_every`` steps;
        see :mod:`lt_faceparse.engine.step_values`)."""
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
        mean_loss = all_reduce_sum(loss_sum.to(self._collective_device())) / (self.accumulation * self.info.world_size)
        grad_norm = None
        if self.config["grad_clip"] is not None:
            self.scaler.unscale_(self.optimizer)
            grad_norm = nn.utils.clip_grad_norm_(self.model.parameters(), self.config["grad_clip"])
        skip = self.steps.add(mean_loss, grad_norm, epoch=epoch, step_in_epoch=step_in_epoch + 1,
                              global_step=global_step)
        step_unless(self.optimizer, self.scaler, skip)
        self.scaler.update()
        return mean_loss.detach(), grad_norm

    def _collective_device(self) -> torch.device:
        return self.info.device if self.info.device.type == "cuda" else torch.device("cpu")

    # ---- checkpoints ---------------------------------------------------------------------------------
    def _checkpoint(self, epoch: int, step_in_epoch: int, global_step: int) -> None:
        """Save a training checkpoint (rank 0; every rank contributes its RNG state)."""
        self.steps.read()  # never checkpoint after a non-finite step (raises TrainingDiverged)
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            raise TrainingDiverged(f"weights hold NaN/inf at epoch {epoch}, global step {global_step}; "
                                   f"not checkpointed. Last good checkpoint: {latest_checkpoint(self.out)}")
        rng = all_gather_objects(capture_rng())
        if self.info.is_main:
            state = {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": scheduler_state(self.scheduler),
                "scaler": self.scaler.state_dict(),
                "epoch": epoch,
                "step_in_epoch": step_in_epoch,
                "global_step": global_step,
                "world_size": self.info.world_size,
                "rng": rng,
                "config": self.effective_config(),
                "longtail": self.longtail.state_dict(),
                "library_version": __version__,
            }
            path = save_checkpoint(self.out, state, keep_last=self.config["checkpoint"]["keep_last"])
            self.log.write("checkpoint", epoch=epoch, step_in_epoch=step_in_epoch, step=global_step, path=path.name)
        barrier()

    def _stop(self, epoch: int, step_in_epoch: int, global_step: int, *, saved: bool) -> NoReturn:
        """Preemption agreed by every rank: checkpoint this step (unless just done) and raise Preempted."""
        if not saved:
            self._checkpoint(epoch, step_in_epoch, global_step)
        name, signum = checkpoint_name(global_step, epoch), self.preemption.agreed
        self.log.write("preempted", signal=signum.name, epoch=epoch, step_in_epoch=step_in_epoch, step=global_step,
                       checkpoint=name, exit_code=exit_code_for(signum))
        # raised without a local name: a frame holding its own exception would keep the data loader alive
        raise Preempted(f"{self.out}: stopped by {signum.name} at epoch {epoch}, step {step_in_epoch} of the epoch "
                        f"(global step {global_step}) after writing checkpoint {name}; run the same command with "
                        f"resume=auto (or --resume) to continue", signum=signum,
                        checkpoint=str(self.out / CHECKPOINT_DIR / name))

    def _resume(self) -> tuple[int, int, int, Path | None] | None:
        """(epoch, step in epoch, global step, checkpoint) to start from; None when ``resume: auto``
        finds the run finished."""
        plan, state = agree_on_resume(self.out, self.effective_config(), self.info, final_name=FINAL_WEIGHTS,
                                      changed_keys=_changed_keys, may_change=RESUMABLE_CHANGES)
        for name, problem in plan.unreadable:
            self.log.write("checkpoint_unreadable", path=name, problem=problem)
        if plan.finished:
            self.log.write("already_finished", checkpoint=plan.checkpoint.name, **launch_environment())
            if self.info.is_main:
                _LOG.warning("%s: this run already finished (%s written, end logged); nothing to train",
                             self.out, FINAL_WEIGHTS)
            return None
        if state is None:
            if self.info.is_main:
                _LOG.info("%s: starting a fresh run (world size %d)", self.out, self.info.world_size)
            return 0, 0, 0, None
        if self.info.is_main:
            _LOG.info("%s: resuming from %s (epoch %d, step %d of the epoch, global step %d; world size %d)",
                      self.out, plan.checkpoint.name, state["epoch"], state["step_in_epoch"], state["global_step"],
                      self.info.world_size)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        restore_scheduler(self.scheduler, state["scheduler"])
        self.longtail.load_state_dict(state.get("longtail", {}))
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        rng = state["rng"]
        restore_rng(rng[self.info.rank] if len(rng) == self.info.world_size else rng[0])
        return state["epoch"], state["step_in_epoch"], state["global_step"], plan.checkpoint

    # ---- validation and final weights ----------------------------------------------------------------
    def _precise_bn(self, seeded: EpochSeededDataset) -> None:
        """Re-estimate the BatchNorm running statistics of the final weights ("precise BN").

        Over ``precise_bn_batches`` training batches per rank (a fresh permutation), each batch's
        statistics count equally (``momentum=None``); the result is averaged over ranks. Weights
        are untouched. Short from-scratch runs need it: torchvision's MobileNetV3 uses BN momentum
        0.01, so after a few hundred steps its running statistics still lag the weights.
        """
        n = self.config["precise_bn_batches"]
        norms = [m for m in self.model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if not n or not norms:
            return
        from lt_faceparse.data import make_loader

        epochs, seed = self.config["optim"]["epochs"], self.config["seed"]
        sampler = ResumableDistributedSampler(self.train_set, num_replicas=self.info.world_size,
                                              rank=self.info.rank, shuffle=True, seed=seed)
        sampler.set_epoch(epochs)
        seeded.set_epoch(epochs)
        loader = make_loader(seeded, self.per_gpu, shuffle=False, num_workers=self.num_workers,
                             sampler=sampler, drop_last=True, seed=worker_seed(seed, epochs, self.info.rank))
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches
        self.runner.train()
        with torch.no_grad():
            for _, batch in zip(range(n), loader):
                batch = batch.to(self.info.device)
                self.runner(batch.images, batch.landmarks)
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
            for buffer in (m.running_mean, m.running_var):
                buffer.copy_(all_reduce_sum(buffer.clone()) / self.info.world_size)
        self.log.write("precise_bn", batches=min(n, len(loader)), layers=len(norms))

    def _validate(self, epoch: int, *, save: bool, step: int) -> None:
        from lt_faceparse.engine.evaluate import evaluate_model

        record = evaluate_model(self.runner, self.val_set, protocol=self.config["val"]["protocol"],
                                batch_size=self.config["val"]["batch_size"], device=self.info.device,
                                provenance=self._provenance(epoch), num_workers=self.num_workers,
                                show_progress=False)
        self.log.write("val", epoch=epoch, split=getattr(self.val_set, "split", None), num_images=record.num_images,
                       mean_f1=record.mean_f1, mean_iou_with_bg=record.mean_iou_with_bg,
                       mean_iou_without_bg=record.mean_iou_without_bg, pixel_accuracy=record.pixel_accuracy)
        self.tensorboard.validation(step, record, self.taxonomy)
        if save and self.info.is_main:
            from lt_faceparse.records import save_record

            save_record(record, self.out / "val")

    def _provenance(self, epoch: int) -> dict[str, Any]:
        kwargs = self.model_kwargs
        return {
            "model": self.config["model"]["name"],
            "backbone": kwargs.get("backbone"),
            "weights": str(self.out / FINAL_WEIGHTS),
            "checkpoint_rule": CHECKPOINT_RULE if epoch == self.config["optim"]["epochs"] else f"epoch {epoch}",
            "pretraining": _pretraining(kwargs),
            "reported": False,
            "source": f"trained with lt-faceparse {__version__}",
            "longtail": self.longtail.describe(),
        }

    def _save_final(self) -> None:
        from lt_faceparse.weights import save_model

        data = self.config["data"]
        metadata = {
            "model": self.config["model"]["name"],
            "model_kwargs": self.model_kwargs,
            "taxonomy": self.taxonomy.to_dict(),
            "resolution": data["resolution"],
            "merge": getattr(self.train_set, "merge", data["merge"]),
            "warp": data["warp"],
            "dataset": getattr(self.train_set, "source_dataset", data["dataset"]),
            "epochs": self.config["optim"]["epochs"],
            "global_batch": self.global_batch,
            "checkpoint_rule": CHECKPOINT_RULE,
            "precise_bn_batches": self.config["precise_bn_batches"],
            "pretraining": _pretraining(self.model_kwargs),
            "source": f"trained with lt-faceparse {__version__}",
            "longtail": self.longtail.describe(),
        }
        save_model(self.model, self.out / FINAL_WEIGHTS, metadata)
        self.log.write("final", path=FINAL_WEIGHTS)


def _changed_keys(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ, except those a resumed run may change. A key the saved config
    lacks (written before the key existed) counts with its default."""
    if not prefix:
        saved = merge_dicts(DEFAULTS, saved)
    changed = []
    for key in sorted(set(saved) | set(current)):
        path = f"{prefix}{key}"
        if path in RESUMABLE_CHANGES:
            continue
        a, b = saved.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict) and path not in ("model.kwargs", "data.synthetic"):
            changed += _changed_keys(a, b, f"{path}.")
        elif a != b:
            changed.append(path)
    return changed


def _check_not_test(val_dataset, build_dataset, name: str, root: Path, common: dict[str, Any]) -> None:
    """Refuse a validation split that holds test images (Helen's ``val`` falls back to ``test``
    when the tree has no ``val.txt``). A tree without a test split passes; a test split that exists
    but cannot be opened is an error (the guard is never switched off silently)."""
    from lt_faceparse.errors import DataError, SplitNotFound

    try:
        test = build_dataset(name, root, "test", train=False, **common)
    except SplitNotFound:
        return  # no test split in this tree: nothing to overlap with
    shared = set(val_dataset.names) & set(test.names)
    if shared:
        raise DataError(root, f"the {val_dataset.split!r} split shares {len(shared)} of {len(val_dataset)} images "
                              f"with the test split; validation during training never uses test images "
                              f"(set data.val_split=null to train without validation)")


def _pretraining(model_kwargs: dict[str, Any]) -> str:
    return "imagenet-1k" if model_kwargs.get("pretrained") else "none"
