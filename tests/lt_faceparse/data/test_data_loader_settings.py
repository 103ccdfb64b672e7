"""make_loader's speed settings and the default number of loader workers."""

from __future__ import annotations

import pytest
import torch

from lt_faceparse.data import build as build_module
from lt_faceparse.data.build import auto_num_workers, make_loader, resolve_num_workers
from lt_faceparse.data.sample import Sample


class _Squares(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 6

    def __getitem__(self, i: int) -> Sample:
        return Sample(image=torch.full((3, 2, 2), float(i)), label=torch.zeros(2, 2, dtype=torch.long), name=str(i),
                      orig_size=(2, 2), index=i)


@pytest.mark.parametrize("cpus, ranks, expected", [(16, 1, 15), (2, 1, 1), (1, 1, 1), (64, 1, 16), (96, 8, 11),
                                                   (16, 8, 1)])
def test_auto_workers_share_the_cpus_of_the_machine(monkeypatch, cpus, ranks, expected):
    monkeypatch.setattr(build_module.os, "sched_getaffinity", lambda pid: set(range(cpus)), raising=False)
    assert auto_num_workers(ranks) == expected
    assert resolve_num_workers("auto", ranks) == expected


def test_explicit_workers_are_kept_and_bad_ones_refused():
    assert resolve_num_workers(0) == 0 and resolve_num_workers(3) == 3
    for bad in (-1, 2.5, True, "many"):
        with pytest.raises(ValueError, match="num_workers"):
            resolve_num_workers(bad)


def test_worker_settings_reach_the_dataloader():
    loader = make_loader(_Squares(), 2, shuffle=False, num_workers=2, persistent_workers=True, prefetch_factor=3,
                         pin_memory=False)
    assert loader.persistent_workers and loader.prefetch_factor == 3
    assert [b.images[:, 0, 0, 0].tolist() for b in loader] == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    plain = make_loader(_Squares(), 2, shuffle=False, num_workers=0, persistent_workers=True, prefetch_factor=3)
    assert not plain.persistent_workers and plain.prefetch_factor is None  # worker settings need workers


@pytest.mark.skipif(not torch.cuda.is_available(), reason="page-locked memory needs CUDA")
@pytest.mark.gpu
def test_pinned_batches():
    batch = next(iter(make_loader(_Squares(), 2, shuffle=False, num_workers=1, pin_memory=True)))
    assert batch.images.is_pinned() and batch.labels.is_pinned()
