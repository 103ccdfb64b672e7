"""RoI tanh-warp (Lin et al. 2019) as used by SegFace for LaPa, and its inverse, batched in torch.

Frames:
- *input*: image pixels, pixel-centre convention (pixel i is at coordinate i).
- *aligned*: the face frame, normalised to [-1, 1] over a 512 x 512 canvas; a least-squares
  similarity transform takes the five landmarks onto :data:`TEMPLATE_512` / 256 - 1 (scaled by
  ``face_scale`` about the canvas centre).
- *warped*: the network input. Aligned coordinates u map to warped coordinates v = g(u), with g the
  identity for |u| <= 1 - w and ``sign(u) * (1 - w + w * tanh((|u| - (1 - w)) / w))`` beyond (w =
  warp factor, 0.8 as released), applied per axis: the face keeps its resolution while the whole
  image, however far it extends, is squeezed into (-1, 1).

:func:`tanh_warp` samples an image into the warped frame; :func:`inverse_tanh_warp` samples
warped-frame logits back onto the input pixels (bilinear, ``grid_sample`` with
``align_corners=False``). :class:`TanhWarp` wraps any model so that it sees warped images and
returns logits in the input frame.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

# Five-point template in a 512 x 512 frame: eye (image left), eye (image right), nose tip,
# mouth corner (image left), mouth corner (image right).
TEMPLATE_512 = ((196.0, 226.0), (316.0, 226.0), (256.0, 286.0), (220.0, 360.4), (292.0, 360.4))
WARP_FACTOR = 0.8
FACE_SCALE = 1.0

# LaPa 106-point indices of the five points: mean(74, 104), mean(83, 105), 54, 84, 90.
FIVE_FROM_106 = ((74, 104), (83, 105), (54,), (84,), (90,))


def five_points_from_106(lm106: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """(..., 106, 2) LaPa landmarks -> (..., 5, 2): mean(74,104), mean(83,105), 54, 84, 90."""
    if lm106.shape[-2] != 106:
        raise ValueError(f"expected 106 landmarks, got shape {tuple(lm106.shape)}")
    pts = [(lm106[..., idx[0], :] + lm106[..., idx[1], :]) / 2 if len(idx) == 2 else lm106[..., idx[0], :]
           for idx in FIVE_FROM_106]
    return torch.stack(pts, dim=-2) if isinstance(lm106, torch.Tensor) else np.stack(pts, axis=-2)


def template_points(face_scale: float = FACE_SCALE, device=None, dtype=torch.float32) -> torch.Tensor:
    """5 x 2 template in the normalised aligned frame (TEMPLATE_512 / 256 - 1, times ``face_scale``)."""
    return (torch.tensor(TEMPLATE_512, device=device, dtype=dtype) / 256.0 - 1.0) * face_scale


def similarity_transform(src: torch.Tensor, dst: torch.Tensor) -> torch.Tensor:
    """Least-squares similarity (rotation, uniform scale, translation) taking ``src`` onto ``dst``.

    src, dst: (B x) N x 2. Returns (B x) 2 x 3 matrices M with dst ~ M @ [x, y, 1].
    Solves for (a, b, tx, ty) in x' = a x - b y + tx, y' = b x + a y + ty.
    """
    squeeze = src.dim() == 2
    if squeeze:
        src, dst = src[None], dst[None]
    src, dst = src.to(torch.float64), dst.to(torch.float64)
    x, y = src[..., 0], src[..., 1]
    one, zero = torch.ones_like(x), torch.zeros_like(x)
    rows_x = torch.stack([x, -y, one, zero], dim=-1)  # B x N x 4
    rows_y = torch.stack([y, x, zero, one], dim=-1)
    a = torch.cat([rows_x, rows_y], dim=1)  # B x 2N x 4
    b = torch.cat([dst[..., 0], dst[..., 1]], dim=1)[..., None]  # B x 2N x 1
    p = torch.linalg.lstsq(a, b).solution[..., 0]  # B x 4
    ca, sb, tx, ty = p.unbind(-1)
    m = torch.stack([torch.stack([ca, -sb, tx], -1), torch.stack([sb, ca, ty], -1)], dim=-2)
    return m[0] if squeeze else m


def _tanh_forward(u: torch.Tensor, w: float) -> torch.Tensor:
    if w <= 0:
        return u
    lin = 1.0 - w
    a = u.abs()
    return torch.where(a <= lin, u, torch.sign(u) * (lin + w * torch.tanh((a - lin) / w)))


def _tanh_inverse(v: torch.Tensor, w: float, eps: float = 1e-6) -> torch.Tensor:
    if w <= 0:
        return v
    lin = 1.0 - w
    a = v.abs()
    t = ((a - lin) / w).clamp(max=1.0 - eps)
    return torch.where(a <= lin, v, torch.sign(v) * (lin + w * torch.atanh(t)))


def _pixel_grid(h: int, w: int, device, dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised (align_corners=False) centres of an h x w grid: x, y each h x w."""
    ys = (torch.arange(h, device=device, dtype=dtype) * 2 + 1) / h - 1
    xs = (torch.arange(w, device=device, dtype=dtype) * 2 + 1) / w - 1
    return xs[None, :].expand(h, w), ys[:, None].expand(h, w)


def _size2(size: int | Sequence[int]) -> tuple[int, int]:
    return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))


def align_matrix(points5: torch.Tensor, face_scale: float = FACE_SCALE) -> torch.Tensor:
    """B x 5 x 2 input-pixel landmarks -> B x 3 x 3 homogeneous matrices input -> aligned frame."""
    tmpl = template_points(face_scale, device=points5.device, dtype=torch.float64)
    m = similarity_transform(points5.to(torch.float64), tmpl.expand(points5.shape[0], 5, 2))
    bottom = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64, device=points5.device).expand(m.shape[0], 1, 3)
    return torch.cat([m, bottom], dim=1)


def tanh_warp(images: torch.Tensor, points5: torch.Tensor, out_size: int | Sequence[int] = 512, *,
              warp_factor: float = WARP_FACTOR, face_scale: float = FACE_SCALE, mode: str = "bilinear") -> torch.Tensor:
    """Warp B x C x H x W images into the B x C x out_h x out_w RoI tanh-warped frame.

    ``points5``: B x 5 x 2 landmarks (x, y) in input pixels (see :func:`five_points_from_106`).
    """
    b, _, h, w = images.shape
    oh, ow = _size2(out_size)
    inv = torch.linalg.inv(align_matrix(points5, face_scale))  # aligned -> input pixels
    vx, vy = _pixel_grid(oh, ow, images.device, torch.float64)
    u = torch.stack([_tanh_inverse(vx, warp_factor), _tanh_inverse(vy, warp_factor), torch.ones_like(vx)], -1)
    p = torch.einsum("bij,hwj->bhwi", inv[:, :2], u)  # B x oh x ow x 2 input pixels
    grid = torch.stack([(2 * p[..., 0] + 1) / w - 1, (2 * p[..., 1] + 1) / h - 1], dim=-1)
    return F.grid_sample(images, grid.to(images.dtype), mode=mode, padding_mode="zeros", align_corners=False)


def inverse_tanh_warp(logits: torch.Tensor, points5: torch.Tensor, out_size: int | Sequence[int], *,
                      warp_factor: float = WARP_FACTOR, face_scale: float = FACE_SCALE,
                      mode: str = "bilinear") -> torch.Tensor:
    """Sample warped-frame B x K x h x w ``logits`` back onto the B x K x out_h x out_w input frame
    (``out_size`` = the input image's (H, W))."""
    oh, ow = _size2(out_size)
    m = align_matrix(points5, face_scale)  # input pixels -> aligned
    xs = torch.arange(ow, device=logits.device, dtype=torch.float64)[None, :].expand(oh, ow)
    ys = torch.arange(oh, device=logits.device, dtype=torch.float64)[:, None].expand(oh, ow)
    p = torch.stack([xs, ys, torch.ones_like(xs)], -1)
    u = torch.einsum("bij,hwj->bhwi", m[:, :2], p)  # B x oh x ow x 2 aligned
    grid = _tanh_forward(u, warp_factor)
    return F.grid_sample(logits, grid.to(logits.dtype), mode=mode, padding_mode="border", align_corners=False)


def landmarks_to_warped(points: torch.Tensor, points5: torch.Tensor, out_size: int | Sequence[int], *,
                        warp_factor: float = WARP_FACTOR, face_scale: float = FACE_SCALE) -> torch.Tensor:
    """Map B x N x 2 input-pixel points into warped-frame pixels (pixel-centre convention)."""
    oh, ow = _size2(out_size)
    m = align_matrix(points5, face_scale)
    ph = torch.cat([points.to(torch.float64), torch.ones_like(points[..., :1], dtype=torch.float64)], -1)
    v = _tanh_forward(torch.einsum("bij,bnj->bni", m[:, :2], ph), warp_factor)
    return torch.stack([((v[..., 0] + 1) * ow - 1) / 2, ((v[..., 1] + 1) * oh - 1) / 2], -1).to(points.dtype)


class TanhWarp(nn.Module):
    """Run ``model`` in the RoI tanh-warped frame and return logits in the input frame.

    ``forward(images, landmarks5)`` (landmarks B x 5 x 2, or B x 106 x 2 LaPa points, in input
    pixels) warps the images to ``out_size`` (the warped frame), runs the model (extra keyword
    arguments are passed on; a ``(logits, extras)`` result keeps its extras, in the warped frame)
    and inverse-warps the logits to the images' H x W. ``loss`` and ``build_kwargs`` are the wrapped model's.
    """

    def __init__(self, model: nn.Module, out_size: int | Sequence[int] = 512, *,
                 warp_factor: float = WARP_FACTOR, face_scale: float = FACE_SCALE):
        super().__init__()
        self.model = model
        self.out_size = _size2(out_size)  # the warped frame the model sees
        self.warp_factor = float(warp_factor)
        self.face_scale = float(face_scale)

    @property
    def build_kwargs(self) -> dict:
        return getattr(self.model, "build_kwargs", {})

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.model.loss(logits, target)

    def forward(self, images: torch.Tensor, landmarks5: torch.Tensor, **kwargs):
        if landmarks5.shape[-2] == 106:
            landmarks5 = five_points_from_106(landmarks5)
        warped = tanh_warp(images, landmarks5, self.out_size, warp_factor=self.warp_factor,
                           face_scale=self.face_scale)
        out = self.model(warped, **kwargs)
        logits, extras = (out if isinstance(out, tuple) else (out, None))
        logits = inverse_tanh_warp(logits, landmarks5, images.shape[-2:], warp_factor=self.warp_factor,
                                   face_scale=self.face_scale)
        return logits if extras is None else (logits, extras)
