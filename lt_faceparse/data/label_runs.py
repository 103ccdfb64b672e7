"""A label map as runs of equal values in row-major order: what the label cache stores and what a
count needs.

A merged 512 px face label has about 2,000 runs. Finding them (0.11 ms on our 2-core test machine)
gives the map's histogram for free and a compact, lossless encoding: the runs' values and lengths,
deflated, are about 2.8 KB, written in 0.13 ms and expanded back in about as long. A PNG of the same
map (3.6 KB) deflates and checksums all 262,144 pixels both ways (0.47 ms to write, 0.7 ms to read),
and Pillow's histogram of the map costs 0.19 ms more.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

_LENGTH = np.dtype("<u4")  # a run can span a whole map (more than 65,535 pixels)


@dataclass(frozen=True)
class LabelRuns:
    """``values[i]`` repeated ``lengths[i]`` times, for i in order, fill an H x W map row by row."""

    values: np.ndarray  # (n,) uint8
    lengths: np.ndarray  # (n,) uint32, every one > 0, summing to H * W
    shape: tuple[int, int]  # (H, W)

    @classmethod
    def of(cls, label: np.ndarray) -> "LabelRuns":
        """The runs of an H x W uint8 label map."""
        label = np.asarray(label)
        if label.dtype != np.uint8 or label.ndim != 2:
            raise ValueError(f"LabelRuns.of: need an H x W uint8 map, got {label.dtype} {label.shape}")
        flat = label.reshape(-1)
        if flat.size == 0:
            return cls(np.zeros(0, np.uint8), np.zeros(0, _LENGTH), label.shape)
        starts_run = np.empty(flat.size, dtype=bool)  # True where a run starts
        starts_run[0] = True
        np.not_equal(flat[1:], flat[:-1], out=starts_run[1:])
        starts = np.flatnonzero(starts_run)
        lengths = np.diff(starts, append=flat.size).astype(_LENGTH)
        return cls(flat[starts], lengths, label.shape)

    def label(self) -> np.ndarray:
        """The H x W uint8 map."""
        return np.repeat(self.values, self.lengths).reshape(self.shape)

    def histogram(self) -> np.ndarray:
        """Counts of the values 0..255 (int64, length 256), as of the expanded map."""
        # float weights are exact here: a count never exceeds H * W, far below 2**53
        return np.bincount(self.values, weights=self.lengths, minlength=256).astype(np.int64)

    def to_bytes(self) -> bytes:
        """The values, then the lengths (uint32, little-endian), deflated (zlib, with its checksum)."""
        return zlib.compress(self.values.tobytes() + self.lengths.astype(_LENGTH).tobytes(), 1)

    @classmethod
    def from_bytes(cls, data: bytes, shape: tuple[int, int], count: int) -> "LabelRuns":
        """Inverse of :meth:`to_bytes` for ``count`` runs of an H x W map. Raises ValueError (or
        zlib.error) on data that is damaged, truncated or does not fill exactly H x W pixels."""
        raw = zlib.decompress(data)
        if len(raw) != count * (1 + _LENGTH.itemsize):
            raise ValueError(f"{len(raw)} bytes for {count} runs")
        values = np.frombuffer(raw, dtype=np.uint8, count=count)
        lengths = np.frombuffer(raw, dtype=_LENGTH, offset=count)
        h, w = shape
        if (count and lengths.min() == 0) or int(lengths.sum(dtype=np.int64)) != h * w:
            raise ValueError(f"runs do not fill a {w}x{h} map")
        return cls(values, lengths, (h, w))
