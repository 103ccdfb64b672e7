"""Data-loading speed: what one loader worker does per image, and what the training loader delivers.

``per_item_ms`` times ``dataset[i]`` (read, decode, label, resize, flip, normalise: one worker's
work per image) in this process, one torch thread, after one untimed pass that warms the label
cache and the file cache. ``loader_images_per_s`` times the training loader itself
(:class:`~lt_faceparse.engine.epoch_loader.EpochLoader`: persistent workers, prefetching, the
collate step and, when asked, pinning) over whole epochs after a first, untimed one.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch
from torch.utils.data import Dataset

from lt_faceparse.engine.epoch_loader import EpochLoader
from lt_faceparse.engine.sampling import EpochSeededDataset, ResumableDistributedSampler


def per_item_ms(dataset: Dataset, *, items: int | None = None, rounds: int = 3) -> dict[str, Any]:
    """Median over ``rounds`` passes of the mean milliseconds per ``dataset[i]`` for the first ``items`` items."""
    n = len(dataset) if items is None else min(items, len(dataset))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a loader worker runs one torch thread
    try:
        for i in range(n):
            dataset[i]
        passes = []
        for _ in range(rounds):
            start = time.perf_counter()
            for i in range(n):
                dataset[i]
            passes.append((time.perf_counter() - start) / n * 1e3)
    finally:
        torch.set_num_threads(threads)
    ms = statistics.median(passes)
    return {"items": n, "ms_per_item": ms, "ms_rounds": passes, "images_per_s_per_worker": 1e3 / ms}


def loader_images_per_s(dataset: Dataset, batch_size: int, num_workers: int, *, epochs: int = 2,
                        device: str = "cpu", seed: int = 0) -> dict[str, Any]:
    """Images per second the training loader yields, over ``epochs`` timed epochs after an untimed first one.

    The timed span of an epoch starts at its ``iter()`` (the loader's restart between epochs included)
    and ends at its last batch (on CUDA: on the GPU, the device synchronised); nothing consumes the
    batches but the loop itself.
    """
    seeded = EpochSeededDataset(dataset, seed)
    sampler = ResumableDistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=seed)
    loader = EpochLoader(seeded, sampler, batch_size, num_workers=num_workers, seed=seed, device=torch.device(device))
    rates = []
    try:
        for epoch in range(epochs + 1):
            start, images = time.perf_counter(), 0
            for batch in loader.epoch(epoch):
                images += len(batch)
            if loader.device.type == "cuda":
                torch.cuda.synchronize(loader.device)
            if epoch:
                rates.append(images / (time.perf_counter() - start))
    finally:
        loader.close()
    return {"num_workers": num_workers, "batch_size": batch_size, "images_per_epoch": images,
            "images_per_s": statistics.median(rates), "epoch_rates": rates, "device": device}
