"""Image decoding and normalisation: the fast JPEG path gives Pillow's pixels; broken files still name themselves."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from lt_faceparse.data import base
from lt_faceparse.data.base import read_rgb
from lt_faceparse.data.transforms import IMAGENET_MEAN, IMAGENET_STD, normalize_image
from lt_faceparse.errors import DataError


def _picture() -> Image.Image:
    rng = np.random.default_rng(0)
    noise = (rng.random((60, 84, 3)) * 255).astype(np.uint8)
    return Image.fromarray(noise).filter(ImageFilter.GaussianBlur(2))


@pytest.mark.parametrize("mode, options", [("RGB", {"quality": 95}), ("RGB", {"subsampling": 0}),
                                           ("RGB", {"progressive": True}), ("L", {}), ("CMYK", {})])
def test_jpeg_pixels_equal_pillows(tmp_path, mode, options):
    path = tmp_path / "face.jpg"
    _picture().convert(mode).save(path, format="JPEG", **options)
    with Image.open(path) as im:
        expected = np.asarray(im.convert("RGB"))
    got = read_rgb(path)
    assert got.dtype == np.uint8 and got.shape == (60, 84, 3) and got.flags["C_CONTIGUOUS"]
    assert np.array_equal(got, expected)


def test_the_fast_path_decodes_complete_jpegs_and_leaves_the_rest_to_pillow(tmp_path, monkeypatch):
    path = tmp_path / "face.jpg"
    _picture().save(path, format="JPEG")
    calls = []
    monkeypatch.setattr(base, "open_image", lambda p: calls.append(p) or Image.open(p))
    read_rgb(path)
    assert calls == []  # decoded by torchvision
    path.write_bytes(path.read_bytes() + b"trailing")  # Pillow reads this; the fast path does not judge it
    read_rgb(path)
    assert calls == [path]


def test_truncated_and_corrupt_jpegs_are_named(tmp_path):
    buf = io.BytesIO()
    _picture().save(buf, format="JPEG")
    data = buf.getvalue()
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated.jpg.*unreadable or truncated"):
        read_rgb(truncated)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(data[:2] + b"\x00" * 100 + data[-2:])  # keeps the end marker
    with pytest.raises(DataError, match="corrupt.jpg"):
        read_rgb(corrupt)


def test_normalize_is_the_imagenet_formula_in_a_channels_first_view():
    image = np.random.default_rng(1).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    got = normalize_image(image)
    reference = torch.from_numpy(image.astype(np.float32)).permute(2, 0, 1).div(255.0)
    reference = (reference - torch.tensor(IMAGENET_MEAN).view(3, 1, 1)) / torch.tensor(IMAGENET_STD).view(3, 1, 1)
    assert got.shape == (3, 5, 7) and got.dtype == torch.float32
    assert torch.equal(got, reference)  # the same operations in the same order: bit for bit
    assert got.stride() == (1, 21, 3)  # a view of the pixel-interleaved buffer (batches stack it contiguously)
    image[0, 0, 0] = (int(image[0, 0, 0]) + 128) % 256
    assert got[0, 0, 0] != normalize_image(image)[0, 0, 0]  # a copy: the caller's array is not aliased
