"""Entry points of the data layer: build a dataset by name, stream its labels, make a loader."""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import pickle
import signal
import sys
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler

from lt_faceparse.data.base import FaceParsingDataset
from lt_faceparse.data.loader_errors import WorkerErrorLoader
from lt_faceparse.data.registry import DATASETS, dataset_key
from lt_faceparse.data.sample import collate_samples
from lt_faceparse.errors import DataError
from lt_faceparse.taxonomy import Taxonomy, get_taxonomy


def dataset_class(name: str) -> type[FaceParsingDataset]:
    module, attr = DATASETS[dataset_key(name)].split(":")
    return getattr(importlib.import_module(module), attr)


def build_dataset(
    name: str,
    root: str | Path,
    split: str,
    *,
    resolution: int | None = 512,
    merge: str | Sequence[str] = "segface",
    train: bool = False,
    taxonomy: str | Taxonomy | None = None,
    flip: bool | str = False,
    resize_mode: str = "square",
    cache_dir: str | Path | bool | None = None,
    num_workers: int = 0,
) -> FaceParsingDataset:
    """Open split ``split`` of the dataset ``name`` (``celebamask-hq``, ``lapa``, ``helen``, ``folder``)
    stored at ``root`` in its distributed layout.

    ``merge`` (CelebAMask-HQ only): paint-order preset or list of parts. ``taxonomy``: the folder
    dataset's class list (default: ``ROOT/classes.txt``); other datasets accept only their own.
    ``cache_dir``/``num_workers``: location of the merged-label cache and the number of processes
    used to build it up front (CelebAMask-HQ; 0 = build lazily on first read).
    """
    cls = dataset_class(name)
    common = dict(resolution=resolution, train=train, flip=flip, resize_mode=resize_mode)
    if cls.dataset_name == "celebamask-hq":
        ds = cls(root, split, merge=merge, cache_dir=cache_dir, num_workers=num_workers, **common)
    elif cls.dataset_name == "folder":
        ds = cls(root, split, taxonomy=taxonomy, **common)
    else:
        ds = cls(root, split, **common)
    if taxonomy is not None and cls.dataset_name != "folder":
        want = get_taxonomy(taxonomy)
        if want.name != ds.taxonomy.name:
            raise ValueError(f"{cls.dataset_name} labels use taxonomy {ds.taxonomy.name!r}, not {want.name!r}")
    return ds


# ---- streaming labels ---------------------------------------------------------------------------

_WORKER_DATASET: FaceParsingDataset | None = None


def _init_worker(dataset: FaceParsingDataset) -> None:
    global _WORKER_DATASET
    _WORKER_DATASET = dataset
    torch.set_num_threads(1)


def _read_label(index: int) -> np.ndarray:
    assert _WORKER_DATASET is not None
    try:
        return _WORKER_DATASET.read_label(index)
    except Exception as err:
        raise _picklable_error(err, _WORKER_DATASET, index) from None


def _picklable_error(err: Exception, dataset: FaceParsingDataset, index: int) -> Exception:
    """``err`` if it survives pickling (the pool sends it to the parent), else a :class:`DataError`
    naming the item: an error the parent cannot unpickle kills the pool's result thread (a hang)."""
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        where = dataset.describe_item(index) if hasattr(dataset, "describe_item") else f"item {index}"
        return DataError(where, f"{type(err).__name__}: {err}")


def _mp_context():
    return mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def iter_labels(dataset: FaceParsingDataset, num_workers: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(index, dataset.read_label(index))`` for every example, in index order.

    With ``num_workers > 0`` labels are read by that many worker processes (which also fill the
    CelebAMask-HQ label cache); after a full pass the dataset's cache is marked complete.
    """
    n = len(dataset)
    if num_workers <= 0 or n < 2:
        for i in range(n):
            yield i, dataset.read_label(i)
    else:
        chunk = max(1, min(64, n // (4 * num_workers)))
        with _mp_context().Pool(num_workers, initializer=_init_worker, initargs=(dataset,)) as pool:
            yield from enumerate(pool.imap(_read_label, range(n), chunksize=chunk))
    finish = getattr(dataset, "finish_pass", None)
    if finish is not None:
        finish()


# ---- loaders --------------------------------------------------------------------------------------

def _seed_worker(worker_id: int) -> None:
    # torch seeds each worker from the loader's generator; keep numpy in step for any numpy draws.
    np.random.seed(torch.initial_seed() % 2**32)
    # torch's worker set-up replaces SIGTERM's handler in C; put back the Python handler the worker
    # inherited, if any: a training run's preemption guard keeps its workers alive through a
    # scheduler's SIGTERM until it has checkpointed (lt_faceparse.engine.preemption).
    inherited = signal.getsignal(signal.SIGTERM)
    if callable(inherited):
        signal.signal(signal.SIGTERM, inherited)


MAX_AUTO_WORKERS = 16


def auto_num_workers(local_world_size: int = 1) -> int:
    """Loader workers per process for ``num_workers: auto``: the CPUs this process may use, shared by
    the ``local_world_size`` processes of this machine, less one for the process itself (at least 1,
    at most :data:`MAX_AUTO_WORKERS`). A 16-core machine driving one GPU gets 15."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(MAX_AUTO_WORKERS, cpus // max(1, local_world_size) - 1))


def resolve_num_workers(value: int | str, local_world_size: int = 1) -> int:
    """``value`` (an integer >= 0, or ``"auto"``: :func:`auto_num_workers`) as a number of workers."""
    if value == "auto":
        return auto_num_workers(local_world_size)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"num_workers must be an integer >= 0 or 'auto', got {value!r}")
    return value


def make_loader(
    dataset: FaceParsingDataset,
    batch_size: int,
    *,
    shuffle: bool,
    num_workers: int,
    sampler: Sampler | None = None,
    drop_last: bool = False,
    seed: int = 0,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    prefetch_factor: int | None = None,
) -> DataLoader:
    """DataLoader yielding :class:`~lt_faceparse.data.sample.Batch` objects.

    ``seed`` fixes the shuffling order and the per-worker augmentation streams. ``shuffle`` is
    ignored when a ``sampler`` (e.g. DistributedSampler) is given. ``pin_memory``: batches in
    page-locked memory (for asynchronous copies to a GPU). ``persistent_workers`` and
    ``prefetch_factor`` (batches in flight per worker) apply with ``num_workers > 0``.
    """
    generator = torch.Generator()
    generator.manual_seed(seed)
    workers = {"persistent_workers": persistent_workers, "prefetch_factor": prefetch_factor} if num_workers else {}
    return WorkerErrorLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle if sampler is None else False,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_samples,
        drop_last=drop_last,
        generator=generator,
        worker_init_fn=_seed_worker,
        pin_memory=pin_memory,
        **workers,
    )
