"""The training loader: one DataLoader for the whole run, its worker processes kept from epoch to epoch.

Making a new DataLoader every epoch forks its workers again and waits for each of them to decode
its first batch before the first step. Here the workers persist (``persistent_workers``), each keeps
``prefetch_factor`` batches in flight, and on CUDA the batches come in page-locked (pinned) memory,
so that the copy to the GPU runs asynchronously (``Batch.to(device, non_blocking=True)``).

What an epoch sees does not change: the sampler is told the epoch (and how many samples a resumed
epoch skips) before each epoch's iteration starts, and every index carries its epoch
(:class:`~lt_faceparse.engine.sampling.EpochTaggedSampler`), because a persistent worker's copy of
the dataset never sees ``set_epoch``. Augmentation draws depend only on (seed, epoch, index)
(:class:`~lt_faceparse.engine.sampling.EpochSeededDataset`), not on the worker that loads an item.
"""

from __future__ import annotations

from typing import Iterator

from torch.utils.data import DataLoader

from lt_faceparse.data.sample import Batch
from lt_faceparse.engine.sampling import EpochSeededDataset, EpochTaggedSampler, ResumableDistributedSampler

PREFETCH_BATCHES = 4  # per worker: absorbs the spread of decode times (images differ in size and content)


class EpochLoader:
    """``epoch(e, skip)`` -> an iterator over epoch ``e``'s batches of ``batch_size`` (the last partial one dropped)."""

    def __init__(self, dataset: EpochSeededDataset, sampler: ResumableDistributedSampler, batch_size: int, *,
                 num_workers: int, seed: int, pin_memory: bool):
        from lt_faceparse.data import make_loader

        self.dataset = dataset
        self.sampler = sampler
        self.loader: DataLoader = make_loader(
            dataset, batch_size, shuffle=False, num_workers=num_workers,
            sampler=EpochTaggedSampler(sampler, dataset), drop_last=True, seed=seed, pin_memory=pin_memory,
            persistent_workers=num_workers > 0, prefetch_factor=PREFETCH_BATCHES if num_workers > 0 else None)

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[Batch]:
        """Batches of epoch ``epoch``, after its first ``skip`` samples (a resumed epoch)."""
        self.sampler.set_epoch(epoch, skip=skip)
        self.dataset.set_epoch(epoch)
        return iter(self.loader)

    def close(self) -> None:
        """Stop the worker processes now: freeing the loader frees its iterator, which stops them."""
        del self.loader
