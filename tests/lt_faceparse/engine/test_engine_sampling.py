"""Samplers: unpadded evaluation shards, resumable training order, per-item augmentation seeds."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from lt_faceparse.engine.sampling import (EpochSeededDataset, ResumableDistributedSampler, ShardSampler,
                                          steps_per_epoch)


@pytest.mark.parametrize("n, world", [(7, 2), (7, 3), (2, 4), (0, 2), (10, 1)])
def test_shards_cover_every_index_exactly_once(n, world):
    shards = [list(ShardSampler(n, r, world)) for r in range(world)]
    assert sorted(i for s in shards for i in s) == list(range(n))
    assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert [len(ShardSampler(n, r, world)) for r in range(world)] == list(map(len, shards))


def test_shard_known_answer():
    assert [list(ShardSampler(7, r, 2)) for r in range(2)] == [[0, 1, 2, 3], [4, 5, 6]]


def test_global_batches_do_not_depend_on_world_size():
    """Step s uses the same set of images whether one rank or two share the global batch."""
    data, per_step = list(range(24)), 8
    one = list(ResumableDistributedSampler(data, num_replicas=1, rank=0, seed=3))
    two = [list(ResumableDistributedSampler(data, num_replicas=2, rank=r, seed=3)) for r in range(2)]
    for s in range(3):
        single = set(one[s * per_step:(s + 1) * per_step])
        split = set(two[0][s * 4:(s + 1) * 4]) | set(two[1][s * 4:(s + 1) * 4])
        assert single == split


def test_skip_resumes_the_same_permutation_and_set_epoch_changes_it():
    data = list(range(20))
    sampler = ResumableDistributedSampler(data, num_replicas=2, rank=1, seed=0)
    sampler.set_epoch(4)
    full = list(sampler)
    sampler.set_epoch(4, skip=6)
    assert list(sampler) == full[6:] and len(sampler) == len(full) - 6
    sampler.set_epoch(5)
    other = ResumableDistributedSampler(data, num_replicas=2, rank=0, seed=0)
    other.set_epoch(5)
    assert list(sampler) != full and len(sampler) == 10
    assert sorted(list(sampler) + list(other)) == data  # the two ranks still split the whole set
    with pytest.raises(ValueError):
        sampler.set_epoch(5, skip=11)


def test_steps_per_epoch_drops_the_partial_global_batch():
    assert steps_per_epoch(24183, 8, 4, 1) == 755  # CelebAMask-HQ train, global batch 32
    assert steps_per_epoch(33, 2, 4, 1) == 4  # 17 per rank (padded) // 4
    assert steps_per_epoch(33, 2, 4, 2) == 2  # 17 // 8
    assert steps_per_epoch(7, 1, 8, 1) == 0


class _RandomItems(torch.utils.data.Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return (torch.rand(()).item(), np.random.rand(), random.random())


def test_epoch_seeded_items_depend_only_on_seed_epoch_index():
    ds = EpochSeededDataset(_RandomItems(), seed=1)
    ds.set_epoch(2)
    forward = [ds[i] for i in range(10)]
    torch.manual_seed(99)
    np.random.seed(99)
    backward = [ds[i] for i in reversed(range(10))][::-1]
    assert forward == backward
    ds.set_epoch(3)
    assert ds[0] != forward[0]
    assert len(set(forward)) == 10


def test_epoch_seeded_items_leave_the_callers_generators_alone():
    ds = EpochSeededDataset(_RandomItems(), seed=1)
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)
    ds[3]
    after = (torch.rand(()).item(), random.random(), np.random.rand())
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)
    assert after == (torch.rand(()).item(), random.random(), np.random.rand())
