"""Worker pools of the label passes: results in order, and any worker error (a DataError, an exception
that cannot be pickled, a worker that dies) ends the map at once in the caller, never a hang."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from conftest import make_celeba_tree, write_png

from lt_faceparse.cli import main
from lt_faceparse.data.chunk_pool import chunk_count, map_chunks, split_even
from lt_faceparse.errors import DataError, LTFaceParseError


@pytest.fixture(autouse=True)
def _no_hang():
    """A hang fails the test after 120 s instead of blocking the suite."""
    def _fail(signum, frame):
        raise TimeoutError("no result within 120 s: the pool hangs")

    before = signal.signal(signal.SIGALRM, _fail)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, before)


class _Unpicklable(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a} and {b}")
        self.lock = __import__("threading").Lock()  # cannot be pickled


def _square_sum(chunk):
    return sum(v * v for v in chunk)


def _fail_on_three(chunk):
    if 3 in chunk:
        raise DataError("/data/img3.png", "label holds ids [42]")
    return len(chunk)


def _unpicklable_on_three(chunk):
    if 3 in chunk:
        raise _Unpicklable("x", "y")
    return len(chunk)


def _value_error_on_three(chunk):
    if 3 in chunk:
        raise ValueError("three is not allowed")
    return len(chunk)


def _die_on_three(chunk):
    if 3 in chunk:
        os._exit(7)
    return len(chunk)


def test_results_in_chunk_order_with_and_without_workers():
    chunks = split_even(list(range(50)), 7)
    assert [len(c) for c in chunks] == [7, 7, 7, 7, 7, 7, 8] and sum(chunks, []) == list(range(50))
    want = [sum(v * v for v in c) for c in chunks]
    assert list(map_chunks(_square_sum, chunks, 2)) == want == list(map_chunks(_square_sum, chunks, 0))
    assert split_even([], 3) == [] and chunk_count(0, 2) == 0
    assert chunk_count(300, 2) == 38 and chunk_count(10, 2) == 8 and chunk_count(3, 4) == 3
    assert chunk_count(301, 3) == 39 and chunk_count(1, 0) == 1 and chunk_count(100, 0) == 13
    for items in range(1, 200):  # never longer than 8, a multiple of the workers when items allow
        for workers in (1, 2, 3, 8):
            count = chunk_count(items, workers)
            assert -(-items // count) <= 8 and (count % workers == 0 or count == items)


@pytest.mark.parametrize("workers", [0, 2])
def test_data_error_arrives_as_itself(workers):
    with pytest.raises(DataError) as info:
        list(map_chunks(_fail_on_three, [[1], [2], [3], [4]], workers))
    assert (info.value.path, info.value.problem) == ("/data/img3.png", "label holds ids [42]")


def test_other_errors_arrive_with_their_message():
    with pytest.raises(ValueError, match="three is not allowed"):
        list(map_chunks(_value_error_on_three, [[1], [2], [3], [4]], 2))
    with pytest.raises(LTFaceParseError, match=r"_Unpicklable: x and y"):
        list(map_chunks(_unpicklable_on_three, [[1], [2], [3], [4]], 2))


def test_a_dying_worker_ends_the_map():
    with pytest.raises(LTFaceParseError, match="ended without a result"):
        list(map_chunks(_die_on_three, [[1], [2], [3], [4]], 2))


def test_freq_with_workers_stops_at_a_bad_mask(tmp_path, capsys):
    """A part mask of another size, counted by two workers: exit 2 and one line naming the file."""
    root = make_celeba_tree(tmp_path / "celeba", {i: i + 1 for i in range(12)})
    bad = root / "CelebAMask-HQ-mask-anno" / "0" / "00007_nose.png"
    write_png(bad, np.zeros((5, 5), np.uint8))
    code = main(["freq", "--dataset", "celebamask-hq", "--root", str(root), "--split", "all",
                 "--merge", "segface", "zll", "--workers", "2", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert str(bad) in err and "mask size 5x5 differs" in err


def test_compute_class_frequencies_with_workers_stops_at_an_unknown_id(tmp_path):
    from lt_faceparse.analysis.frequency import compute_class_frequencies
    from lt_faceparse.data import build_dataset

    masks = {5: {"skin": np.full((4, 4), 255, np.uint8)}}
    root = make_celeba_tree(tmp_path / "celeba", {i: i + 1 for i in range(8)}, masks=masks)
    ds = build_dataset("celebamask-hq", root, "train", resolution=None, cache_dir=False)
    ds.read_label = lambda i, _read=ds.read_label: _read(i) + (40 if i == 5 else 0)  # ids 40+: no class
    with pytest.raises(DataError, match=r"CelebA-HQ-img/5\.jpg: label holds ids \[4\d\] outside"):
        compute_class_frequencies(ds, num_workers=2)
