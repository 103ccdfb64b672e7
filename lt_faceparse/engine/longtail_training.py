"""What the trainer calls: the ``longtail`` section turned into a loss remedy, a sampler, a dataset
wrapper and the records that name them.

:class:`LongtailTraining` is built once per run from the config and the training split. With the
defaults (``plain``, ``uniform``, no copy-paste) every method is the identity: the trainer gets the
same sampler, dataset and model as without this module, so training is bit-for-bit unchanged.

Class priors (see :mod:`lt_faceparse.longtail.priors`) are counted only when a remedy needs them:
rank 0 counts the training split (or reads the cache) first, the other ranks then read the cache.
The priors used are written inline into the run's ``config.yaml`` (``longtail.priors``), the weight
file's metadata and every result record's provenance (``longtail``), so the run can be reproduced
without the split and post-hoc logit adjustment can reuse them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from lt_faceparse.engine.config import ConfigError, expand_path
from lt_faceparse.engine.distributed import DistInfo, barrier
from lt_faceparse.engine.sampling import EpochSeededDataset, ResumableDistributedSampler
from lt_faceparse.longtail.decoupled import SEED_OFFSET, retrain_classifier
from lt_faceparse.longtail.copy_paste import CopyPasteDataset, occlusion_table
from lt_faceparse.longtail.model_loss import attach_loss_remedy, build_pixel_loss
from lt_faceparse.longtail.pixel_loss import PixelLoss
from lt_faceparse.longtail.priors import ClassPriors, SplitStatistics, read_priors_csv, split_statistics
from lt_faceparse.longtail.repeat_factor import (RepeatFactorSampler, RepeatedIndexDataset, class_repeat_factors,
                                                 image_repeat_factors)
from lt_faceparse.longtail.spec import (PLAIN, UNIFORM, canonical_longtail, is_plain, loss_name, needs_image_classes,
                                        needs_priors, remedy_label, sampler_name)
from lt_faceparse.taxonomy import Taxonomy


class LongtailTraining:
    """The remedies of one training run (see module docstring)."""

    def __init__(self, section: dict[str, Any], train_set: Any, *, split_stats: SplitStatistics | None = None,
                 priors: ClassPriors | None = None):
        self.section = canonical_longtail(section)
        self.train_set = train_set
        self.taxonomy = train_set.taxonomy
        self.split_stats = split_stats
        self.priors = priors
        self.loss: PixelLoss | None = None
        self.loss_combination: str | None = None
        self.copy_paste = self._resolve_copy_paste()
        self.image_factors: np.ndarray | None = None
        self.classifier_stage: dict[str, Any] | None = None  # what the decoupled second stage did
        if sampler_name(self.section) != UNIFORM:
            self.image_factors = self._image_factors()

    @classmethod
    def from_config(cls, config: dict[str, Any], train_set: Any, info: DistInfo | None = None) -> "LongtailTraining":
        """Count what the remedies need on the training split (rank 0 first, cached) and build."""
        section = canonical_longtail(config["longtail"])
        priors_needed, per_image = needs_priors(section), needs_image_classes(section)
        if not (priors_needed or per_image):
            return cls(section, train_set)
        stats = None
        if (priors_needed and section["priors"] is None) or per_image:
            is_main = info is None or info.is_main
            workers = config["data"]["num_workers"]
            if is_main:
                stats = split_statistics(train_set, num_workers=workers)
            barrier()
            if not is_main:
                stats = split_statistics(train_set, num_workers=workers)
        priors = resolve_priors(section["priors"], train_set.taxonomy, stats) if priors_needed else None
        return cls(section, train_set, split_stats=stats, priors=priors)

    # ---- pieces the trainer uses ------------------------------------------------------------------
    @property
    def active(self) -> bool:
        return not is_plain(self.section)

    def attach(self, model: nn.Module, device: torch.device | str) -> None:
        """Put the loss remedy in place of the model's cross-entropy term (no-op for ``plain``)."""
        if loss_name(self.section) == PLAIN:
            return

        self.loss = build_pixel_loss(self.section["loss"], self.priors, self.taxonomy.num_classes).to(device)
        try:
            self.loss_combination = attach_loss_remedy(model, self.loss)
        except ValueError as err:
            raise ConfigError(str(err)) from None

    def wrap_dataset(self, dataset: Any) -> Any:
        """The training dataset with copy-paste and the repeat-factor copies' virtual indices (or itself)."""
        if self.copy_paste is not None:
            covers = occlusion_table(self.taxonomy, getattr(dataset, "merge_order", None))
            classes = [self.taxonomy.id_of(c) for c in self.copy_paste["classes"]]
            dataset = CopyPasteDataset(dataset, self.split_stats.presence, classes, prob=self.copy_paste["prob"],
                                       jitter=self.copy_paste["jitter"], covers=covers)
        if self.image_factors is not None:
            dataset = RepeatedIndexDataset(dataset)
        return dataset

    def make_sampler(self, dataset: Any, *, num_replicas: int, rank: int, seed: int):
        """The training sampler: :class:`ResumableDistributedSampler` (uniform, as without remedies) or
        :class:`~lt_faceparse.longtail.repeat_factor.RepeatFactorSampler`; both take ``set_epoch(epoch, skip)``."""
        if self.image_factors is None:
            return ResumableDistributedSampler(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)

        return RepeatFactorSampler(self.image_factors, num_replicas=num_replicas, rank=rank, seed=seed,
                                   epoch_size=self.section["sampler"]["epoch_size"])

    def epoch_items(self, sampler: Any, epoch: int) -> int:
        """Samples in an epoch over all ranks (``steps_per_epoch`` comes from it)."""
        if self.image_factors is None:
            return len(self.train_set)
        return sampler.epoch_items(epoch)

    def run_classifier_stage(self, model: nn.Module, runner: nn.Module, config: dict[str, Any], *, batch_size: int,
                             device: torch.device, num_workers: int, log: Any) -> None:
        """The decoupled second stage (cRT/LWS, :mod:`lt_faceparse.longtail.decoupled`) when the section
        asks for it; called once, after the normal schedule and precise BN (no-op otherwise)."""
        spec = self.section["retrain_classifier"]
        if spec is None:
            return
        seeded = EpochSeededDataset(self.train_set, config["seed"] + SEED_OFFSET)
        self.classifier_stage = retrain_classifier(
            model, runner, seeded, self.split_stats.presence, spec, optim=config["optim"],
            batch_size=batch_size, seed=config["seed"], device=device, num_workers=num_workers)
        log.write("classifier_stage", **self.classifier_stage)

    # ---- state and records ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """State that must survive a resume (seesaw's accumulated counts); empty otherwise."""
        return {"loss": self.loss.training_state()} if self.loss is not None and self.loss.training_state() else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.loss is not None:
            self.loss.load_training_state(state.get("loss", {}))
        elif state:
            raise ValueError(f"checkpoint holds long-tail state {sorted(state)} but this run has no loss remedy")

    def config_section(self) -> dict[str, Any]:
        """The ``longtail`` section of the run's ``config.yaml``: every setting expanded, the priors used inline."""
        section = dict(self.section)
        if self.copy_paste is not None:
            section["copy_paste"] = dict(self.copy_paste)
        if self.priors is not None:
            section["priors"] = self.priors.to_dict()
        return section

    def describe(self) -> dict[str, Any]:
        """What weight-file metadata and record provenance store under ``longtail``."""
        return {
            "label": remedy_label(self.section),
            **self.config_section(),
            "loss_combination": self.loss_combination,
            "repeat_factors": None if self.image_factors is None else {
                "mean": float(self.image_factors.mean()), "max": float(self.image_factors.max()),
                "images_repeated": int((self.image_factors > 1).sum())},
            "classifier_stage": self.classifier_stage,
        }

    # ---- internals --------------------------------------------------------------------------------
    def _resolve_copy_paste(self) -> dict[str, Any] | None:
        spec = self.section["copy_paste"]
        if spec is None:
            return None
        classes = spec["classes"] or [self.taxonomy.names[i] for i in self.taxonomy.accessory_ids]
        if not classes:
            raise ConfigError(f"config key longtail.copy_paste.classes: taxonomy {self.taxonomy.name!r} has no "
                              "accessory classes; name the classes to paste")
        unknown = [c for c in classes if c not in self.taxonomy.names]
        if unknown:
            raise ConfigError(f"config key longtail.copy_paste.classes: {unknown} are not classes of taxonomy "
                              f"{self.taxonomy.name!r} ({', '.join(self.taxonomy.names)})")
        if self.split_stats is None:
            raise ValueError("copy-paste needs the training split's per-image presence table")
        return {**spec, "classes": list(classes)}

    def _image_factors(self) -> np.ndarray:
        if self.split_stats is None:
            raise ValueError("repeat-factor sampling needs the training split's per-image presence table")
        class_factors = class_repeat_factors(self.priors.presence(), self.section["sampler"]["threshold"])
        return image_repeat_factors(self.split_stats.presence, class_factors)


def resolve_priors(setting: str | dict[str, Any] | None, taxonomy: Taxonomy,
                   split_stats: SplitStatistics | None) -> ClassPriors:
    """The priors a remedy uses: a ``class_frequencies.csv`` path, an inline mapping, or (None) the
    training split's own counts ``split_stats``."""
    if setting is None:
        if split_stats is None:
            raise ValueError("resolve_priors: no priors setting and no training-split statistics")
        return split_stats.priors
    if isinstance(setting, dict):
        priors = ClassPriors.from_dict(setting, "config key longtail.priors")
        priors.check_taxonomy(taxonomy, "config key longtail.priors")
        return priors
    return read_priors_csv(expand_path(setting), taxonomy)
