"""Repeat-factor sampling: factors of a small presence table, the epoch multiset, DDP shards, resume."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from lt_faceparse.longtail.repeat_factor import (RepeatedIndexDataset, RepeatFactorSampler, class_repeat_factors,
                                                 epoch_copies, image_repeat_factors)

# 5 images x 3 classes (background, A, B): presence f = (1.0, 0.6, 0.4)
PRESENCE = np.array([
    [1, 1, 0],
    [1, 1, 0],
    [1, 1, 1],
    [1, 0, 0],
    [1, 0, 1],
], dtype=bool)


def test_repeat_factors_of_a_small_presence_table():
    f = PRESENCE.mean(0)
    assert f.tolist() == [1.0, 0.6, 0.4]
    rc = class_repeat_factors(f, 0.9)  # r_c = max(1, sqrt(t / f_c))
    assert rc == pytest.approx([1.0, math.sqrt(1.5), 1.5])
    ri = image_repeat_factors(PRESENCE, rc)  # max over the classes each image contains
    assert ri == pytest.approx([math.sqrt(1.5), math.sqrt(1.5), 1.5, 1.0, 1.5])
    # a low threshold repeats nothing; a class no image holds does not divide by zero
    assert class_repeat_factors(f, 0.001).tolist() == [1.0, 1.0, 1.0]
    assert class_repeat_factors(np.array([0.5, 0.0]), 0.5).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        class_repeat_factors(f, 0.0)


def test_epoch_copies_are_floor_plus_a_seeded_bernoulli():
    r = np.array([math.sqrt(1.5), math.sqrt(1.5), 1.5, 1.0, 2.0])
    for epoch in range(3):
        copies = epoch_copies(r, seed=7, epoch=epoch)
        draws = np.random.default_rng([7, epoch]).random(5)
        assert copies.tolist() == (np.floor(r) + (draws < r - np.floor(r))).astype(int).tolist()
        assert copies[3] == 1 and copies[4] == 2  # integer factors are exact
    mean = np.mean([epoch_copies(r, seed=0, epoch=e) for e in range(4000)], axis=0)
    assert mean == pytest.approx(r, abs=0.03)  # E[copies] = r


def _factors() -> np.ndarray:
    return image_repeat_factors(PRESENCE, class_repeat_factors(PRESENCE.mean(0), 0.9))


def test_epoch_list_is_the_multiset_of_copies_shuffled_and_deterministic():
    sampler = RepeatFactorSampler(_factors(), seed=3)
    items = sampler.epoch_list(2)
    copies = epoch_copies(_factors(), 3, 2)
    base = Counter(i % 5 for i in items)
    assert [base[i] for i in range(5)] == copies.tolist()
    assert len(set(items)) == len(items)  # copy k of image i is the distinct virtual index k * 5 + i
    assert all(i // 5 < copies[i % 5] for i in items)
    assert RepeatFactorSampler(_factors(), seed=3).epoch_list(2) == items
    assert sampler.epoch_list(3) != items or sampler.epoch_items(3) != len(items)
    sampler.set_epoch(2)
    assert list(sampler) == items and len(sampler) == len(items)


def test_ranks_share_one_padded_list_and_split_it():
    factors = np.full(11, 1.5)  # about 16 items per epoch
    world = 3
    samplers = [RepeatFactorSampler(factors, num_replicas=world, rank=r, seed=1) for r in range(world)]
    for s in samplers:
        s.set_epoch(4)
    shards = [list(s) for s in samplers]
    items = samplers[0].epoch_list(4)
    per_rank = math.ceil(len(items) / world)
    assert all(len(shard) == per_rank == len(s) for shard, s in zip(shards, samplers))
    padded = (items * 2)[: per_rank * world]
    assert sorted(sum(shards, [])) == sorted(padded)
    assert [padded[i] for i in range(0, len(padded), world)] == shards[0]


def test_resume_skips_exactly_the_samples_already_seen():
    sampler = RepeatFactorSampler(_factors(), num_replicas=2, rank=1, seed=5)
    sampler.set_epoch(6)
    whole = list(sampler)
    sampler.set_epoch(6, skip=2)
    assert list(sampler) == whole[2:] and len(sampler) == len(whole) - 2
    with pytest.raises(ValueError, match="cannot skip"):
        sampler.set_epoch(6, skip=len(whole) + 1)


def test_dataset_epoch_size_keeps_the_budget_of_uniform_sampling():
    factors = np.array([1.0, 1.0, 3.0, 3.0, 1.0, 1.0])
    expanded = RepeatFactorSampler(factors, seed=2)
    same = RepeatFactorSampler(factors, seed=2, epoch_size="dataset")
    assert expanded.epoch_items(0) == 10 and same.epoch_items(0) == 6
    assert same.epoch_list(0) == expanded.epoch_list(0)[:6]
    counts = Counter()
    for epoch in range(500):
        counts.update(i % 6 for i in same.epoch_list(epoch))
    share = np.array([counts[i] for i in range(6)]) / sum(counts.values())
    assert share == pytest.approx(factors / factors.sum(), abs=0.01)  # each image keeps its share


def test_repeated_index_dataset_maps_copies_back():
    ds = RepeatedIndexDataset(list("abcde"))
    assert [ds[i] for i in (0, 4, 5, 9, 12)] == ["a", "e", "a", "e", "c"] and len(ds) == 5
