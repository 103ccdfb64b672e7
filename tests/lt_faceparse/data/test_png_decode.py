"""png_pixels: plain 8-bit PNGs decoded without Image.open give Pillow's pixels exactly (every row
filter, known answers), and anything else is left to Pillow (None), errors included."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from lt_faceparse.data.celebamask_layout import read_part_mask
from lt_faceparse.data.png_decode import png_pixels
from lt_faceparse.errors import DataError


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else (b if pb <= pc else c)


def _filtered(pixels: np.ndarray, bpp: int, filters: list[int]) -> bytes:
    """Each row PNG-filtered with its filter type (0 none, 1 sub, 2 up, 3 average, 4 Paeth)."""
    rows = pixels.reshape(pixels.shape[0], -1).astype(int)
    out = bytearray()
    for y, kind in enumerate(filters):
        row, up = rows[y], rows[y - 1] if y else np.zeros_like(rows[y])
        line = []
        for x, v in enumerate(row):
            a = row[x - bpp] if x >= bpp else 0
            c = up[x - bpp] if x >= bpp else 0
            pred = [0, a, up[x], (a + up[x]) // 2, _paeth(a, up[x], c)][kind]
            line.append((v - pred) % 256)
        out += bytes([kind, *line])
    return bytes(out)


def _png(pixels: np.ndarray, colour: int, filters: list[int], *, depth: int = 8, interlace: int = 0,
         extra_before: bytes = b"", extra_after: bytes = b"") -> bytes:
    h, w = pixels.shape[:2]
    bpp = 1 if pixels.ndim == 2 else pixels.shape[2]
    data = zlib.compress(_filtered(pixels, bpp, filters))
    body = [_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, interlace)), extra_before]
    if colour == 3:
        body.append(_chunk(b"PLTE", bytes(range(256)) * 3))
    body += [_chunk(b"IDAT", data[:7]), _chunk(b"IDAT", data[7:]), extra_after, _chunk(b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(body)


@pytest.mark.parametrize("colour, channels, mode", [(0, 1, "L"), (2, 3, "RGB"), (3, 1, "P")])
def test_every_row_filter_decodes_to_the_known_pixels_as_pillow_does(tmp_path, colour, channels, mode):
    rng = np.random.default_rng(colour)
    shape = (20, 13) if channels == 1 else (20, 13, channels)
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    pixels[5:9] = 0  # runs, as in masks
    filters = [int(f) for f in rng.integers(0, 5, 20)]
    path = tmp_path / "f.png"
    path.write_bytes(_png(pixels, colour, filters))
    got = png_pixels(path)
    assert got is not None and got[0] == mode and got[1].dtype == np.uint8
    np.testing.assert_array_equal(got[1], pixels)  # the known answer
    with Image.open(path) as img:
        img.load()
        assert (img.mode, img.tobytes()) == (mode, got[1].tobytes())  # and Pillow's reading


def test_masks_pillow_writes_decode_as_pillow_reads_them(tmp_path):
    rng = np.random.default_rng(1)
    for i, (mode, shape) in enumerate([("L", (64, 48)), ("RGB", (64, 48, 3)), ("L", (1, 1))]):
        arr = (rng.random(shape) > 0.7).astype(np.uint8) * 255
        path = tmp_path / f"{i}.png"
        Image.fromarray(arr, mode).save(path, optimize=bool(i % 2))
        with Image.open(path) as img:
            img.load()
            mode, pixels = png_pixels(path)
            assert mode == img.mode and pixels.shape[:2] == (img.height, img.width)
            assert pixels.tobytes() == img.tobytes()


def _left_to_pillow(tmp_path, name: str, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return path


GRAY = np.arange(48, dtype=np.uint8).reshape(6, 8)
GOOD = _png(GRAY, 0, [0] * 6)


@pytest.mark.parametrize("name, data", [
    ("16bit.png", _png((GRAY.astype(">u2") * 300).view(np.uint8).reshape(6, 8, 2), 0, [0] * 6, depth=16)),
    ("interlaced.png", _png(GRAY, 0, [0] * 6, interlace=1)),
    ("text_after_data.png", _png(GRAY, 0, [0] * 6, extra_after=_chunk(b"tEXt", b"k\0v"))),
    ("animated.png", _png(GRAY, 0, [0] * 6, extra_before=_chunk(b"acTL", struct.pack(">II", 1, 0)))),
    ("bad_header_crc.png", GOOD[:29] + bytes(4) + GOOD[33:]),  # IHDR's checksum: bytes 29 to 33
    ("truncated.png", GOOD[:-20]),
    ("no_end.png", GOOD[:-12]),
    ("not_png.png", b"GIF89a" + bytes(40)),
])
def test_anything_else_is_left_to_pillow(tmp_path, name, data):
    assert png_pixels(_left_to_pillow(tmp_path, name, data)) is None


def test_bad_image_data_is_left_to_pillow_and_reported_by_it(tmp_path):
    start = GOOD.index(b"IDAT") + 4
    broken = GOOD[:start] + bytes(7) + GOOD[start + 7:]  # the zlib header destroyed (its CRC not checked)
    path = _left_to_pillow(tmp_path, "corrupt.png", broken)
    assert png_pixels(path) is None
    with pytest.raises(DataError, match="corrupt.png"):
        read_part_mask(path)
    assert png_pixels(tmp_path / "missing.png") is None


def test_the_pillow_path_gives_the_same_mask(tmp_path, monkeypatch):
    from lt_faceparse.data import celebamask_layout

    rng = np.random.default_rng(2)
    path = tmp_path / "m.png"
    Image.fromarray((rng.random((32, 24, 3)) > 0.8).astype(np.uint8) * 9, "RGB").save(path)
    fast = read_part_mask(path)
    monkeypatch.setattr(celebamask_layout, "png_pixels", lambda p: None)
    np.testing.assert_array_equal(read_part_mask(path), fast)
    assert fast.any() and not fast.all()


@pytest.mark.parametrize("mode, values", [("L", [[0, 3], [18, 255]]), ("P", [[1, 0], [7, 2]])])
def test_label_pngs_read_the_same_either_way(tmp_path, monkeypatch, mode, values):
    from lt_faceparse.data import base
    from lt_faceparse.data.base import read_id_png

    path = tmp_path / "label.png"
    img = Image.fromarray(np.array(values, dtype=np.uint8), mode)
    if mode == "P":
        img.putpalette(list(range(256)) * 3)  # a full palette: Pillow writes 8-bit indices
    img.save(path)
    assert png_pixels(path) is not None
    fast = read_id_png(path)
    monkeypatch.setattr(base, "png_pixels", lambda p: None)
    slow = read_id_png(path)
    assert fast.dtype == slow.dtype == np.uint8 and fast.tolist() == slow.tolist() == values


def test_a_pillow_that_copies_instead_of_mapping_is_left_to_pillow(tmp_path, monkeypatch):
    path = _left_to_pillow(tmp_path, "gray.png", GOOD)
    mode, pixels = png_pixels(path)
    assert mode == "L" and pixels.shape == (6, 8)
    np.testing.assert_array_equal(pixels, GRAY)
    # frombuffer that copies (not a view of the array): the decoded pixels would never arrive
    monkeypatch.setattr(Image, "frombuffer", lambda mode, size, data, *args: Image.new(mode, size))
    assert png_pixels(path) is None
