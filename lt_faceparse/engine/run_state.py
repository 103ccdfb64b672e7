"""The run state of a training run: where it starts (fresh, resumed, finished), its checkpoints, the stop on
preemption and the final weights.

Everything a resumed run needs to continue bit for bit lives in a checkpoint: model, optimizer, scheduler,
GradScaler, the long-tail state, every rank's RNG state and the effective config. Where a run starts is
decided by :mod:`lt_faceparse.engine.resume` (every rank agrees); checkpoint files by
:mod:`lt_faceparse.engine.checkpoint`; the signal handling by :mod:`lt_faceparse.engine.preemption`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import torch
import torch.nn as nn

from lt_faceparse import __version__
from lt_faceparse.engine.checkpoint import (CHECKPOINT_DIR, capture_rng, checkpoint_name, latest_checkpoint,
                                            restore_rng, restore_scheduler, save_checkpoint, scheduler_state)
from lt_faceparse.engine.config import DEFAULTS, merge_dicts
from lt_faceparse.engine.distributed import DistInfo, all_gather_objects, barrier, launch_environment
from lt_faceparse.engine.longtail_training import LongtailTraining
from lt_faceparse.engine.preemption import Preempted, PreemptionGuard, exit_code_for
from lt_faceparse.engine.progress import JsonlLog
from lt_faceparse.engine.resume import agree_on_resume
from lt_faceparse.engine.step_values import StepValues, TrainingDiverged
from lt_faceparse.weights import save_model

_LOG = logging.getLogger(__name__)

CHECKPOINT_RULE = "last epoch"
FINAL_WEIGHTS = "final.safetensors"
# config keys that may differ between a checkpoint and the run resuming it (the rest must match).
# longtail.retrain_classifier: the decoupled second stage runs after the schedule from its final weights,
# which it does not change, so a schedule's checkpoint is the first stage of any second stage
RESUMABLE_CHANGES = frozenset({"out", "resume", "device", "log_every", "checkpoint", "val", "data.root",
                               "data.num_workers", "batch.per_gpu", "batch.accumulation", "channels_last",
                               "compile", "formulation", "tensorboard", "longtail.retrain_classifier"})


@dataclass(frozen=True)
class StartPoint:
    """Where the loop starts: epoch, optimizer steps already done in it, global step, and the checkpoint
    resumed from (None for a fresh run)."""

    epoch: int
    step_in_epoch: int
    global_step: int
    checkpoint: Path | None


@dataclass
class RunState:
    """The parts of a run a checkpoint holds, and the run folder they are written to (by global rank 0)."""

    config: dict[str, Any]
    info: DistInfo
    out: Path
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    longtail: LongtailTraining
    log: JsonlLog
    steps: StepValues
    preemption: PreemptionGuard

    def effective_config(self) -> dict[str, Any]:
        """The config as this run resolved it: the ``longtail`` section with every setting expanded and the
        priors used inline. ``config.yaml`` and checkpoints store it, and a resume compares against it."""
        return {**self.config, "longtail": self.longtail.config_section()}

    def resume(self) -> StartPoint | None:
        """Where to start, with the checkpoint's state loaded; None when ``resume: auto`` finds the run finished."""
        plan, state = agree_on_resume(self.out, self.effective_config(), self.info, final_name=FINAL_WEIGHTS,
                                      changed_keys=changed_keys, may_change=RESUMABLE_CHANGES)
        for name, problem in plan.unreadable:
            self.log.write("checkpoint_unreadable", path=name, problem=problem)
        if plan.finished:
            self.log.write("already_finished", checkpoint=plan.checkpoint.name, **launch_environment())
            if self.info.is_main:  # what ``resume: auto`` asks for (e.g. the benchmark reusing a run): not a warning
                _LOG.info("%s: this run already finished (%s written, end logged); nothing to train",
                          self.out, FINAL_WEIGHTS)
            return None
        if state is None:
            if self.info.is_main:
                _LOG.info("%s: starting a fresh run (world size %d)", self.out, self.info.world_size)
            return StartPoint(0, 0, 0, None)
        if self.info.is_main:
            _LOG.info("%s: resuming from %s (epoch %d, step %d of the epoch, global step %d; world size %d)",
                      self.out, plan.checkpoint.name, state["epoch"], state["step_in_epoch"], state["global_step"],
                      self.info.world_size)
        self._load(state)
        return StartPoint(state["epoch"], state["step_in_epoch"], state["global_step"], plan.checkpoint)

    def _load(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        restore_scheduler(self.scheduler, state["scheduler"])
        self.longtail.load_state_dict(state.get("longtail", {}))
        if state["scaler"]:
            self.scaler.load_state_dict(state["scaler"])
        rng = state["rng"]
        restore_rng(rng[self.info.rank] if len(rng) == self.info.world_size else rng[0])

    def checkpoint(self, epoch: int, step_in_epoch: int, global_step: int) -> None:
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

    def stop(self, epoch: int, step_in_epoch: int, global_step: int, *, saved: bool) -> NoReturn:
        """Preemption agreed by every rank: checkpoint this step (unless just done) and raise Preempted."""
        if not saved:
            self.checkpoint(epoch, step_in_epoch, global_step)
        name, signum = checkpoint_name(global_step, epoch), self.preemption.agreed
        self.log.write("preempted", signal=signum.name, epoch=epoch, step_in_epoch=step_in_epoch, step=global_step,
                       checkpoint=name, exit_code=exit_code_for(signum))
        # raised without a local name: a frame holding its own exception would keep the data loader alive
        raise Preempted(f"{self.out}: stopped by {signum.name} at epoch {epoch}, step {step_in_epoch} of the epoch "
                        f"(global step {global_step}) after writing checkpoint {name}; run the same command with "
                        f"resume=auto (or --resume) to continue", signum=signum,
                        checkpoint=str(self.out / CHECKPOINT_DIR / name))

    def save_final(self, *, model_kwargs: dict[str, Any], train_set: Any, global_batch: int) -> None:
        """The final weights (``final.safetensors``, :mod:`lt_faceparse.weights`) with the run's metadata (rank 0)."""

        data = self.config["data"]
        metadata = {
            "model": self.config["model"]["name"],
            "model_kwargs": model_kwargs,
            "taxonomy": train_set.taxonomy.to_dict(),
            "resolution": data["resolution"],
            "merge": getattr(train_set, "merge", data["merge"]),
            "warp": data["warp"],
            "dataset": getattr(train_set, "source_dataset", data["dataset"]),
            "epochs": self.config["optim"]["epochs"],
            "global_batch": global_batch,
            "checkpoint_rule": CHECKPOINT_RULE,
            "precise_bn_batches": self.config["precise_bn_batches"],
            "pretraining": pretraining(model_kwargs),
            "source": f"trained with lt-faceparse {__version__}",
            "longtail": self.longtail.describe(),
        }
        save_model(self.model, self.out / FINAL_WEIGHTS, metadata)
        self.log.write("final", path=FINAL_WEIGHTS)


def changed_keys(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
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
            changed += changed_keys(a, b, f"{path}.")
        elif a != b:
            changed.append(path)
    return changed


def pretraining(model_kwargs: dict[str, Any]) -> str:
    """The pretraining a record states for a model built with ``model_kwargs``."""
    return "imagenet-1k" if model_kwargs.get("pretrained") else "none"
