"""One training loader per run: persistent workers see each epoch's draws, skip a resumed epoch's head, stop on close."""

from __future__ import annotations

import multiprocessing

import torch
from engine_testdata import MemoryFaces

from lt_faceparse.data.sample import Sample
from lt_faceparse.engine.epoch_loader import EpochLoader
from lt_faceparse.engine.sampling import EpochSeededDataset, EpochTaggedSampler, ResumableDistributedSampler


class _Noisy(MemoryFaces):
    """Every load draws fresh noise from torch's global generator (what augmentation does)."""

    def __getitem__(self, index: int) -> Sample:
        sample = super().__getitem__(index)
        return Sample(image=sample.image + torch.randn(sample.image.shape), label=sample.label, name=sample.name,
                      orig_size=sample.orig_size, index=index, taxonomy=sample.taxonomy)


def _epochs(num_workers: int, epochs=(0, 1, 2), skip: int = 0) -> list[list[tuple[list[int], torch.Tensor]]]:
    data = _Noisy(12, size=4)
    seeded = EpochSeededDataset(data, seed=7)
    sampler = ResumableDistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=7)
    loader = EpochLoader(seeded, sampler, 4, num_workers=num_workers, seed=0, device=torch.device("cpu"))
    out = []
    try:
        for epoch in epochs:
            out.append([(batch.indices.tolist(), batch.images) for batch in loader.epoch(epoch, skip=skip)])
    finally:
        loader.close()
    return out


def test_persistent_workers_give_the_main_process_batches_epoch_after_epoch():
    main, workers = _epochs(0), _epochs(2)
    for epoch_main, epoch_workers in zip(main, workers):
        assert [i for i, _ in epoch_main] == [i for i, _ in epoch_workers]
        assert all(torch.equal(a, b) for (_, a), (_, b) in zip(epoch_main, epoch_workers))
    # the draws depend on the epoch: item 0 looks different in epochs 0 and 1
    first = [{i: img for idx, imgs in epoch for i, img in zip(idx, imgs)}[0] for epoch in main[:2]]
    assert not torch.equal(first[0], first[1])


def test_a_resumed_epoch_skips_the_samples_already_trained_on():
    whole, resumed = _epochs(2, epochs=(1,)), _epochs(2, epochs=(1,), skip=4)
    assert [i for i, _ in resumed[0]] == [i for i, _ in whole[0]][1:]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(whole[0][1:], resumed[0]))


def test_keys_carry_the_epoch_of_the_main_process():
    seeded = EpochSeededDataset(_Noisy(3, size=4), seed=0)
    tagged = EpochTaggedSampler(range(3), seeded)
    seeded.set_epoch(5)
    assert list(tagged) == [(5, 0), (5, 1), (5, 2)] and len(tagged) == 3
    assert torch.equal(seeded[(5, 1)].image, seeded[1].image)
    assert not torch.equal(seeded[(4, 1)].image, seeded[1].image)


def test_close_stops_the_workers():
    data = MemoryFaces(8, size=4)
    seeded = EpochSeededDataset(data, seed=0)
    sampler = ResumableDistributedSampler(data, num_replicas=1, rank=0, shuffle=False, seed=0)
    loader = EpochLoader(seeded, sampler, 2, num_workers=2, seed=0, device=torch.device("cpu"))
    list(loader.epoch(0))
    assert loader.loader.persistent_workers and len(multiprocessing.active_children()) >= 2
    loader.close()
    assert not [p for p in multiprocessing.active_children() if "DataLoader" in type(p).__name__ or p.daemon]
