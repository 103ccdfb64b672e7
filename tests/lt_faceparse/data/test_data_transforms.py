"""Transforms: resize/pad geometry, normalisation, flips that swap left/right classes and landmarks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lt_faceparse.data import transforms as T
from lt_faceparse.taxonomy import IGNORE_INDEX, get_taxonomy


def test_normalize_roundtrip_and_values():
    img = np.array([[[0, 128, 255], [255, 255, 255]]], dtype=np.uint8)  # 1 x 2 x 3
    t = T.normalize_image(img)
    assert t.shape == (3, 1, 2) and t.dtype == torch.float32
    assert t[0, 0, 0].item() == pytest.approx((0 - 0.485) / 0.229)
    assert t[2, 0, 0].item() == pytest.approx((1 - 0.406) / 0.225)
    np.testing.assert_array_equal(T.denormalize(t), img)
    np.testing.assert_array_equal(T.denormalize(t[None])[0], img)


def test_square_resize_nearest_labels_and_landmarks():
    label = np.array([[1, 2], [3, 4]], dtype=np.uint8)
    image = np.zeros((2, 2, 3), dtype=np.uint8)
    lm = np.array([[0.0, 0.0], [1.0, 1.0], [0.5, 0.5]], dtype=np.float32)
    img4, lab4, lm4 = T.resize_to_grid(image, label, lm, 4, "square")
    assert img4.shape == (4, 4, 3)
    np.testing.assert_array_equal(lab4, np.kron(label, np.ones((2, 2), dtype=np.uint8)))
    # pixel centres: 0 -> 0.5, 1 -> 2.5, the image centre stays the centre
    np.testing.assert_allclose(lm4, [[0.5, 0.5], [2.5, 2.5], [1.5, 1.5]])


def test_image_at_twice_the_label_resolution_uses_label_frame():
    image = np.zeros((8, 8, 3), dtype=np.uint8)
    label = np.ones((4, 4), dtype=np.uint8)
    lm = np.array([[3.5, 3.5]], dtype=np.float32)  # image centre in 8 px image pixels
    img, lab, out_lm = T.resize_to_grid(image, label, lm, None)
    assert img.shape == (4, 4, 3) and lab.shape == (4, 4)
    np.testing.assert_allclose(out_lm, [[1.5, 1.5]])


def test_pad_mode_keeps_aspect_and_ignores_padding():
    image = np.full((2, 4, 3), 200, dtype=np.uint8)
    label = np.array([[1, 1, 2, 2], [3, 3, 4, 4]], dtype=np.uint8)
    img, lab, _ = T.resize_to_grid(image, label, None, 8, "pad")
    assert img.shape == (8, 8, 3) and lab.shape == (8, 8)
    assert T.pad_geometry((2, 4), 8) == (4, 8)
    np.testing.assert_array_equal(lab[:4], np.kron(label, np.ones((2, 2), dtype=np.uint8)))
    assert (lab[4:] == IGNORE_INDEX).all() and (img[4:] == 0).all() and (img[:4] == 200).all()
    x = torch.arange(64).view(1, 8, 8)
    assert T.unpad(x, (2, 4), 8).shape == (1, 4, 8)
    with pytest.raises(ValueError):
        T.resize_to_grid(image, label, None, 8, "stretch")


def test_flip_swaps_every_pair_celebamask():
    tax = get_taxonomy("celebamask-hq")
    lut = tax.flip_lut()
    label = np.arange(19, dtype=np.uint8)[None, :]  # 1 x 19: id i at column i
    image = np.zeros((1, 19, 3), dtype=np.uint8)
    _, flipped, _ = T.hflip(image, label, None, lut)
    want = np.arange(19)[::-1].copy()
    for a, b in ((4, 5), (6, 7), (8, 9)):  # l/r ear, brow, eye
        want[want == a], want[want == b] = 100 + b, 100 + a
    want[want >= 100] -= 100
    np.testing.assert_array_equal(flipped[0], want)
    assert lut[255] == 255


def test_flip_lapa_pairs_and_landmark_order():
    tax = get_taxonomy("lapa")
    label = np.array([[2, 4, 0, 5, 3]], dtype=np.uint8)  # l_brow l_eye bg r_eye r_brow
    image = np.arange(15, dtype=np.uint8).reshape(1, 5, 3)
    lm5 = np.array([[0, 0], [4, 0], [2, 0], [1, 0], [3, 0]], dtype=np.float32)
    img, lab, lm = T.hflip(image, label, lm5, tax.flip_lut())
    np.testing.assert_array_equal(lab, [[2, 4, 0, 5, 3]])  # mirrored and swapped: same picture
    np.testing.assert_array_equal(img[0, 0], image[0, 4])
    # x -> W-1-x, then eyes and mouth corners exchange their slots
    np.testing.assert_allclose(lm, [[0, 0], [4, 0], [2, 0], [1, 0], [3, 0]])


def test_68_point_mirror_is_an_involution_that_swaps_sides():
    perm = T.landmark_mirror(68)
    np.testing.assert_array_equal(perm[perm], np.arange(68))
    assert perm[0] == 16 and perm[8] == 8 and perm[36] == 45 and perm[48] == 54 and perm[30] == 30
    with pytest.raises(ValueError, match="106"):
        T.hflip(np.zeros((2, 2, 3), np.uint8), None, np.zeros((106, 2), np.float32), np.arange(256, dtype=np.uint8))
