"""LabelRuns: known runs, round trips through bytes, histograms equal to a plain count, damage refused."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from lt_faceparse.data.label_runs import LabelRuns


def test_known_runs_cross_row_ends():
    label = np.array([[0, 0, 3], [3, 3, 1]], dtype=np.uint8)
    runs = LabelRuns.of(label)
    assert runs.values.tolist() == [0, 3, 1]  # the run of 3 continues from one row into the next
    assert runs.lengths.tolist() == [2, 3, 1]
    assert runs.shape == (2, 3)
    np.testing.assert_array_equal(runs.label(), label)
    assert runs.histogram()[[0, 1, 3]].tolist() == [2, 1, 3] and runs.histogram().sum() == 6


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 1), (37, 53), (512, 512)])
def test_round_trip_and_histogram_match_a_plain_count(shape):
    rng = np.random.default_rng(sum(shape))
    # blocky maps like merged face labels, plus a few isolated pixels and the values 0 and 255
    label = np.repeat(rng.integers(0, 19, size=(shape[0], max(1, shape[1] // 8))), 8, axis=1)[:, :shape[1]]
    label = label.astype(np.uint8)
    label.flat[rng.integers(0, label.size, size=3)] = 255
    runs = LabelRuns.of(label)
    np.testing.assert_array_equal(runs.label(), label)
    hist = runs.histogram()
    assert hist.dtype == np.int64 and hist.shape == (256,)
    np.testing.assert_array_equal(hist, np.bincount(label.ravel(), minlength=256))
    back = LabelRuns.from_bytes(runs.to_bytes(), runs.shape, len(runs.values))
    np.testing.assert_array_equal(back.label(), label)


def test_one_run_longer_than_16_bits():
    label = np.full((512, 512), 7, dtype=np.uint8)
    runs = LabelRuns.of(label)
    assert runs.values.tolist() == [7] and runs.lengths.tolist() == [512 * 512]
    np.testing.assert_array_equal(LabelRuns.from_bytes(runs.to_bytes(), (512, 512), 1).label(), label)


def test_empty_map():
    runs = LabelRuns.of(np.zeros((0, 4), dtype=np.uint8))
    assert runs.label().shape == (0, 4) and runs.histogram().sum() == 0
    assert LabelRuns.from_bytes(runs.to_bytes(), (0, 4), 0).label().shape == (0, 4)


def test_only_uint8_maps():
    with pytest.raises(ValueError, match="uint8"):
        LabelRuns.of(np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="uint8"):
        LabelRuns.of(np.zeros(4, dtype=np.uint8))


def test_damaged_bytes_are_refused():
    label = np.array([[1, 1, 2, 2]], dtype=np.uint8)
    runs = LabelRuns.of(label)
    data = runs.to_bytes()
    with pytest.raises(zlib.error):
        LabelRuns.from_bytes(data[:-3], (1, 4), 2)  # cut short
    flipped = bytearray(data)
    flipped[len(flipped) // 2] ^= 0xFF
    with pytest.raises((zlib.error, ValueError)):
        LabelRuns.from_bytes(bytes(flipped), (1, 4), 2)
    with pytest.raises(ValueError, match="bytes for 3 runs"):
        LabelRuns.from_bytes(data, (1, 4), 3)  # the header's run count disagrees
    with pytest.raises(ValueError, match="do not fill"):
        LabelRuns.from_bytes(data, (2, 4), 2)  # the header's size disagrees
    zero = zlib.compress(np.array([1, 2], np.uint8).tobytes() + np.array([4, 0], "<u4").tobytes())
    with pytest.raises(ValueError, match="do not fill"):
        LabelRuns.from_bytes(zero, (1, 4), 2)  # a run of length 0
