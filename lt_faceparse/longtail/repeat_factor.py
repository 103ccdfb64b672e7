"""Repeat-factor sampling (Gupta et al., CVPR 2019, LVIS), deterministic, sharded for DDP, resumable.

With f_c the share of training images that contain class c and ``threshold`` t:
r_c = max(1, sqrt(t / f_c)); an image's repeat factor r = max over the classes it contains of r_c;
each epoch the image appears ⌊r⌋ times plus once more with probability r − ⌊r⌋. (Classes that
no image contains do not enter any maximum.)

The epoch list depends only on ``(seed, epoch)``: the Bernoulli draws use a numpy generator seeded
with ``[seed, epoch]``, the order a torch permutation seeded with ``seed + epoch`` (as
``DistributedSampler``). Every rank builds the same list, pads it to a multiple of the world size
with its first items (as ``DistributedSampler``), and takes every ``world_size``-th item from its
rank on. A resumed epoch skips the samples this rank already trained on (``set_epoch(epoch, skip)``,
as :class:`~lt_faceparse.engine.sampling.ResumableDistributedSampler`).

Epoch length: ``epoch_size="expanded"`` keeps every repeat (LVIS; the epoch is longer than the
dataset and its length varies with the draws: :meth:`RepeatFactorSampler.epoch_items`);
``"dataset"`` keeps the first ``len(dataset)`` items of the shuffled expanded list, so an epoch has
as many samples as with uniform sampling (the same budget) while each image keeps its share.

Copies are told apart: copy k of image i is yielded as the *virtual index* ``k * N + i``;
:class:`RepeatedIndexDataset` maps it back to ``i``. Per-sample augmentation seeded by index
(:class:`~lt_faceparse.engine.sampling.EpochSeededDataset`) therefore differs between copies.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


def class_repeat_factors(presence_share: np.ndarray, threshold: float) -> np.ndarray:
    """K values r_c = max(1, sqrt(t / f_c)); 1 where f_c = 0 (a class no image holds)."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"repeat-factor threshold must be in (0, 1], got {threshold}")
    f = np.asarray(presence_share, dtype=np.float64)
    with np.errstate(divide="ignore"):
        r = np.sqrt(threshold / f)
    return np.where(f > 0, np.maximum(1.0, r), 1.0)


def image_repeat_factors(presence: np.ndarray, class_factors: np.ndarray) -> np.ndarray:
    """N values: the largest r_c over the classes image i contains (1 for an image with none)."""
    presence = np.asarray(presence, dtype=bool)
    if presence.ndim != 2 or presence.shape[1] != len(class_factors):
        raise ValueError(f"presence must be N x {len(class_factors)}, got {presence.shape}")
    return np.where(presence, class_factors[None, :], 1.0).max(axis=1, initial=1.0)


def epoch_copies(image_factors: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """N copy counts of one epoch: ⌊r⌋ + Bernoulli(r − ⌊r⌋), drawn from ``[seed, epoch]``."""
    r = np.asarray(image_factors, dtype=np.float64)
    whole = np.floor(r)
    extra = np.random.default_rng([seed, epoch]).random(len(r)) < (r - whole)
    return (whole + extra).astype(np.int64)


class RepeatFactorSampler(Sampler[int]):
    """Yields this rank's share of an epoch's repeat-factor list (virtual indices, see module doc)."""

    def __init__(self, image_factors: np.ndarray, *, num_replicas: int = 1, rank: int = 0, seed: int = 0,
                 epoch_size: str = "expanded"):
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} outside world of {num_replicas}")
        if epoch_size not in ("expanded", "dataset"):
            raise ValueError(f"epoch_size must be 'expanded' or 'dataset', got {epoch_size!r}")
        self.image_factors = np.asarray(image_factors, dtype=np.float64)
        if self.image_factors.ndim != 1 or not len(self.image_factors) or (self.image_factors < 1).any():
            raise ValueError("image repeat factors must be a non-empty vector of values >= 1")
        self.num_items = len(self.image_factors)
        self.num_replicas, self.rank, self.seed, self.epoch_size = num_replicas, rank, seed, epoch_size
        self.epoch, self.skip = 0, 0
        self._list: tuple[int, list[int]] | None = None

    def epoch_list(self, epoch: int) -> list[int]:
        """The whole epoch (every rank's samples, before padding), in order: virtual indices."""
        if self._list is not None and self._list[0] == epoch:
            return self._list[1]
        copies = epoch_copies(self.image_factors, self.seed, epoch)
        base = np.repeat(np.arange(self.num_items), copies)
        copy_number = np.concatenate([np.arange(c) for c in copies if c]) if copies.sum() else np.zeros(0, np.int64)
        virtual = copy_number * self.num_items + base
        generator = torch.Generator()
        generator.manual_seed(self.seed + epoch)
        order = torch.randperm(len(virtual), generator=generator).numpy()
        items = virtual[order].tolist()
        if self.epoch_size == "dataset":
            items = items[: self.num_items]
        self._list = (epoch, items)
        return items

    def epoch_items(self, epoch: int) -> int:
        """Samples in epoch ``epoch`` over all ranks (before padding to the world size)."""
        return len(self.epoch_list(epoch))

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch = epoch
        per_rank = math.ceil(self.epoch_items(epoch) / self.num_replicas)
        if skip < 0 or skip > per_rank:
            raise ValueError(f"cannot skip {skip} of {per_rank} samples")
        self.skip = skip

    def _rank_items(self) -> list[int]:
        items = self.epoch_list(self.epoch)
        total = math.ceil(len(items) / self.num_replicas) * self.num_replicas
        padded = (items * math.ceil(total / max(len(items), 1)))[:total] if items else []
        return padded[self.rank:total:self.num_replicas]

    def __iter__(self) -> Iterator[int]:
        return iter(self._rank_items()[self.skip:])

    def __len__(self) -> int:
        return math.ceil(self.epoch_items(self.epoch) / self.num_replicas) - self.skip


class RepeatedIndexDataset(Dataset):
    """Reads virtual index ``k * N + i`` as item ``i`` of ``base`` (N = ``len(base)``)."""

    def __init__(self, base: Dataset):
        self.base = base
        self.num_items = len(base)

    def __len__(self) -> int:
        return self.num_items

    def __getitem__(self, index: int) -> Any:
        return self.base[int(index) % self.num_items]
