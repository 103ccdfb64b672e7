"""The training loader: one DataLoader for the whole run, its worker processes kept from epoch to epoch.

Making a new DataLoader every epoch forks its workers again and waits for each of them to decode
its first batch before the first step. Here the workers persist (``persistent_workers``), each keeps
``prefetch_factor`` batches in flight, and on CUDA the batches come in page-locked (pinned) memory,
so that the copy to the GPU runs asynchronously (``Batch.to(device, non_blocking=True)``).

On CUDA the next batch is also copied to the GPU on a side stream while the current step computes
(:class:`CudaPrefetcher`), so the copy does not sit on the training stream.

What an epoch sees does not change: the sampler is told the epoch (and how many samples a resumed
epoch skips) before each epoch's iteration starts, and every index carries its epoch
(:class:`~lt_faceparse.engine.sampling.EpochTaggedSampler`), because a persistent worker's copy of
the dataset never sees ``set_epoch``. Augmentation draws depend only on (seed, epoch, index)
(:class:`~lt_faceparse.engine.sampling.EpochSeededDataset`), not on the worker that loads an item.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import DataLoader

from lt_faceparse.data import make_loader
from lt_faceparse.data.sample import Batch
from lt_faceparse.engine.sampling import EpochSeededDataset, EpochTaggedSampler, ResumableDistributedSampler

PREFETCH_BATCHES = 4  # per worker: absorbs the spread of decode times (images differ in size and content)


class EpochLoader:
    """``epoch(e, skip)`` -> an iterator over epoch ``e``'s batches of ``batch_size`` (the last partial one dropped)."""

    def __init__(self, dataset: EpochSeededDataset, sampler: ResumableDistributedSampler, batch_size: int, *,
                 num_workers: int, seed: int, device: torch.device):
        self.dataset = dataset
        self.sampler = sampler
        self.device = device
        self.loader: DataLoader = make_loader(
            dataset, batch_size, shuffle=False, num_workers=num_workers,
            sampler=EpochTaggedSampler(sampler, dataset), drop_last=True, seed=seed,
            pin_memory=device.type == "cuda", persistent_workers=num_workers > 0,
            prefetch_factor=PREFETCH_BATCHES if num_workers > 0 else None)

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[Batch]:
        """Batches of epoch ``epoch``, after its first ``skip`` samples (a resumed epoch); on CUDA already on
        the device (``Batch.to`` the device is then free)."""
        self.sampler.set_epoch(epoch, skip=skip)
        self.dataset.set_epoch(epoch)
        batches = iter(self.loader)
        return CudaPrefetcher(batches, self.device) if self.device.type == "cuda" else batches

    def close(self) -> None:
        """Stop the worker processes now: freeing the loader frees its iterator, which stops them."""
        del self.loader


class CudaPrefetcher:
    """Batches of ``batches`` (in pinned memory) on ``device``, each copied on a side stream one step ahead.

    The training stream waits for a batch's copy only when it takes the batch; the batch's memory is
    marked as used by the training stream, so the caching allocator does not hand it out again before
    the step that reads it has run.
    """

    def __init__(self, batches: Iterator[Batch], device: torch.device):
        self.batches = batches
        self.device = device
        self.stream = torch.cuda.Stream(device)
        self.next = self._copy_next()

    def _copy_next(self) -> Batch | None:
        try:
            batch = next(self.batches)
        except StopIteration:
            return None
        with torch.cuda.stream(self.stream):
            return batch.to(self.device, non_blocking=True)

    def __iter__(self) -> "CudaPrefetcher":
        return self

    def __next__(self) -> Batch:
        batch = self.next
        if batch is None:
            raise StopIteration
        current = torch.cuda.current_stream(self.device)
        current.wait_stream(self.stream)
        for tensor in (batch.images, batch.labels, batch.landmarks):
            if tensor is not None:
                tensor.record_stream(current)
        self.next = self._copy_next()
        return batch
