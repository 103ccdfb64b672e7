"""RoI tanh-warp: five points, similarity fit, round trip, landmarks onto the template, TanhWarp."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from lt_faceparse.data.warp import (
    TEMPLATE_512,
    TanhWarp,
    align_matrix,
    five_points_from_106,
    inverse_tanh_warp,
    landmarks_to_warped,
    similarity_transform,
    tanh_warp,
)


def test_five_points_from_106_indices():
    lm = torch.zeros(2, 106, 2)
    lm[:, :, 0] = torch.arange(106).float()
    lm[:, :, 1] = 1.0
    p5 = five_points_from_106(lm)
    assert p5.shape == (2, 5, 2)
    assert p5[0, :, 0].tolist() == [(74 + 104) / 2, (83 + 105) / 2, 54, 84, 90]
    np.testing.assert_allclose(five_points_from_106(lm.numpy())[1], p5[1].numpy())
    with pytest.raises(ValueError):
        five_points_from_106(torch.zeros(68, 2))


def test_similarity_transform_recovers_known_transform():
    src = torch.tensor([[10.0, 20.0], [50.0, 22.0], [30.0, 40.0], [15.0, 60.0], [45.0, 61.0]], dtype=torch.float64)
    a, s, t = math.radians(25.0), 0.013, torch.tensor([-0.4, 0.2], dtype=torch.float64)
    r = s * torch.tensor([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]], dtype=torch.float64)
    dst = src @ r.T + t
    m = similarity_transform(src, dst)
    torch.testing.assert_close(m[:, :2], r)
    torch.testing.assert_close(m[:, 2], t)
    batched = similarity_transform(src[None].repeat(3, 1, 1), dst[None].repeat(3, 1, 1))
    assert batched.shape == (3, 2, 3)


def _face_points(scale: float = 1.0, shift=(0.0, 0.0)) -> torch.Tensor:
    """Five input-pixel points that are exactly the template scaled into a 96 x 80 image."""
    t = torch.tensor(TEMPLATE_512, dtype=torch.float32) / 512 * 64 * scale
    return (t + torch.tensor([8.0 + shift[0], 16.0 + shift[1]]))[None]


def test_landmarks_land_on_the_template():
    p5 = _face_points()
    warped = landmarks_to_warped(p5, p5, 512, warp_factor=0.0)
    # linear warp: template pixel (x, y) in continuous coordinates = pixel centre x - 0.5
    torch.testing.assert_close(warped, torch.tensor(TEMPLATE_512)[None] - 0.5, atol=1e-3, rtol=0)
    tw = landmarks_to_warped(p5, p5, 512, warp_factor=0.8)
    # the tanh warp keeps the centre and pulls every point towards it
    centre = torch.tensor([255.5, 255.5])
    assert ((tw - centre).norm(dim=-1) <= (warped - centre).norm(dim=-1) + 1e-4).all()


def test_warp_then_inverse_is_identity_inside_the_face():
    h, w = 96, 80
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    img = torch.stack([torch.sin(xx / 9), torch.cos(yy / 7), torch.sin((xx + yy) / 11)])[None]  # smooth, in [-1, 1]
    img = torch.cat([img, img.flip(-1)])  # batch of 2 with different points
    p5 = torch.cat([_face_points(), _face_points(0.8, (5, 3))])
    warped = tanh_warp(img, p5, 256)
    assert warped.shape == (2, 3, 256, 256)
    back = inverse_tanh_warp(warped, p5, (h, w))
    assert back.shape == img.shape
    # face region: aligned coordinates within [-0.6, 0.6] (eyes, nose, mouth and cheeks)
    m = align_matrix(p5)
    pix = torch.stack([xx, yy, torch.ones_like(xx)], -1).double()
    u = torch.einsum("bij,hwj->bhwi", m[:, :2], pix)
    face = (u.abs() < 0.6).all(-1)
    assert face.sum() > 500
    err = (back - img).abs().amax(1)  # B x H x W
    # tolerance: 0.01 on a signal of amplitude 1 (two bilinear resamplings of a smooth image)
    assert err[face].max() < 0.01
    # far from the face the warp compresses the image and the round trip is lossy
    assert err.max() > 0.01


def test_tanh_warp_module_returns_input_frame_logits():
    class Project(nn.Module):  # 1x1 "segmentation model": logits are a linear map of the pixels
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)
            self.build_kwargs = {"k": 4}

        def forward(self, x, return_extras=False):
            y = self.conv(x)
            return (y, {"seen": x.shape[-1]}) if return_extras else y

        def loss(self, logits, target):
            return nn.functional.cross_entropy(logits, target)

    torch.manual_seed(0)
    model = Project()
    wrapped = TanhWarp(model, 128)
    h, w = 96, 80
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    img = torch.stack([torch.sin(xx / 9), torch.cos(yy / 7), torch.sin((xx + yy) / 11)])[None]
    lm106 = torch.zeros(1, 106, 2)
    p5 = _face_points()
    for k, idx in enumerate([(74, 104), (83, 105), (54,), (84,), (90,)]):
        lm106[0, list(idx)] = p5[0, k]
    logits = wrapped(img, lm106)
    assert logits.shape == (1, 4, h, w)
    direct = model(img)
    m = align_matrix(p5)
    pix = torch.stack([xx, yy, torch.ones_like(xx)], -1).double()
    face = (torch.einsum("ij,hwj->hwi", m[0, :2], pix).abs() < 0.5).all(-1)
    assert (logits - direct).abs().amax(1)[0][face].max() < 0.02
    logits2, extras = wrapped(img, p5, return_extras=True)
    assert extras == {"seen": 128} and logits2.shape == (1, 4, h, w)
    assert wrapped.build_kwargs == {"k": 4}
    assert wrapped.loss(logits, torch.zeros(1, h, w, dtype=torch.long)).dim() == 0
