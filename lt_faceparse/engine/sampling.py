"""Samplers and per-sample seeding for training and evaluation."""

from __future__ import annotations

import math
import random
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


class ShardSampler(Sampler[int]):
    """Contiguous, unpadded shard of ``range(n)`` for evaluation: each index goes to exactly one rank.

    ``DistributedSampler`` pads the last shard with repeated indices so that every rank has the
    same length; counting those twice would bias a metric. Shards here differ in length by at most
    one and their union is exactly ``range(n)``.
    """

    def __init__(self, num_items: int, rank: int = 0, world_size: int = 1):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world of {world_size}")
        per_rank, extra = divmod(num_items, world_size)
        self.start = rank * per_rank + min(rank, extra)
        self.stop = self.start + per_rank + (1 if rank < extra else 0)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start, self.stop))

    def __len__(self) -> int:
        return self.stop - self.start


class ResumableDistributedSampler(torch.utils.data.DistributedSampler):
    """``DistributedSampler`` whose current epoch can start after the first ``skip`` samples.

    The permutation depends only on ``seed`` and the epoch (never on the world size), so a resumed
    run sees the same order as an uninterrupted one and skips the batches it has already trained on.
    ``skip`` applies to the next epoch iterated and is cleared by :meth:`set_epoch`.
    """

    def __init__(self, dataset: Sequence, *, num_replicas: int, rank: int, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False):
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=drop_last)
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        super().set_epoch(epoch)
        if skip < 0 or skip > self.num_samples:
            raise ValueError(f"cannot skip {skip} of {self.num_samples} samples")
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.skip:])

    def __len__(self) -> int:
        return self.num_samples - self.skip


def worker_seed(base_seed: int, epoch: int, rank: int) -> int:
    """Seed of a rank's data-loader generator for an epoch (workers derive theirs from it)."""
    return (base_seed * 1_000_003 + epoch * 1009 + rank) % 2**63


def steps_per_epoch(num_items: int, world_size: int, per_gpu: int, accumulation: int) -> int:
    """Optimizer steps per epoch under ``DistributedSampler`` padding (last partial step dropped)."""
    per_rank = math.ceil(num_items / world_size)
    return per_rank // (per_gpu * accumulation)


class EpochSeededDataset(Dataset):
    """Wraps a dataset so that the random draws made while loading item ``i`` (augmentation) depend
    only on ``(seed, epoch, i)``.

    Python's, numpy's and torch's global generators are seeded per item and restored afterwards.
    Augmentation then no longer depends on which worker or rank loads an item, nor on where in the
    epoch a resumed run starts: a run resumed mid-epoch sees the same augmented images as an
    uninterrupted one.

    ``dataset[i]`` loads item ``i`` of the epoch set by :meth:`set_epoch`; ``dataset[(epoch, i)]``
    names the epoch itself. Loader workers that persist across epochs hold their own copy of this
    object, which :meth:`set_epoch` in the main process never reaches, so their indices carry the
    epoch (:class:`EpochTaggedSampler`).
    """

    def __init__(self, base: Dataset, seed: int):
        self.base = base
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, key: int | tuple[int, int]) -> Any:
        epoch, index = key if isinstance(key, tuple) else (self.epoch, key)
        item_seed = (self.seed * 1_000_003 + epoch * 100_003 + int(index)) % 2**32
        py_state, np_state = random.getstate(), np.random.get_state()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(item_seed)
            random.seed(item_seed)
            np.random.seed(item_seed)
            try:
                return self.base[index]
            finally:
                random.setstate(py_state)
                np.random.set_state(np_state)


class EpochTaggedSampler(Sampler[tuple[int, int]]):
    """``sampler``'s indices as ``(epoch, index)`` keys of an :class:`EpochSeededDataset`, the epoch read
    from ``dataset`` (in the main process) each time an epoch's iteration starts."""

    def __init__(self, sampler: Sampler[int], dataset: EpochSeededDataset):
        self.sampler = sampler
        self.dataset = dataset

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.dataset.epoch
        return ((epoch, index) for index in self.sampler)

    def __len__(self) -> int:
        return len(self.sampler)
