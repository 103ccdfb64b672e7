"""MLP fusion of the four backbone stages into one map of face tokens at stride 4.

Literal formulation (paper Sec. 3.2, the release): per stage a per-pixel ``Linear(C_i, D)``,
bilinear upsampling of every stage to the stride-4 grid, concatenation deep-to-shallow (stride 32,
16, 8, 4) and a bias-free 1x1 ``Conv2d(4D, D)``.

Everything up to and including the fuse conv is linear, and bilinear upsampling acts on each channel
separately with weights summing to one, so it commutes with channel mixing (biases included). Hence

    fuse(concat_i up(L_i G_i)) = sum_i up(W_i L_i G_i) = sum_i up(A_i G_i + c_i),
    A_i = W_i @ L_i.weight,  c_i = W_i @ L_i.bias,

with ``W_i`` the fuse conv's D x D block for stage i. The fast path applies the folded D x C_i
projection at each stage's own resolution and upsamples D channels, instead of running a 4D -> D
conv on the stride-4 grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from segface.cache import DerivedCache


class Projection(nn.Module):
    """Per-pixel ``Linear(in_dim, dim)`` on an NCHW map (a 1x1 conv with Linear's weight layout)."""

    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.proj = nn.Linear(in_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pointwise(x, self.proj.weight, self.proj.bias)


def pointwise(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """Apply a D_out x D_in matrix to every pixel of a B x D_in x H x W map (any memory format)."""
    return F.conv2d(x, weight[:, :, None, None], bias)


def upsample(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x  # bilinear resampling onto the same grid is the identity
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class MLPFusion(nn.Module):
    """Four stages (B x C_i x H/s_i x W/s_i, strides 4..32) -> face tokens B x D x H/4 x W/4.

    ``linear_c[i]`` projects stage i (stride 4 * 2**i); ``linear_fuse`` sees the concatenation in
    deep-to-shallow order, so its input block j belongs to stage 3 - j.
    """

    def __init__(self, in_channels: tuple[int, ...], dim: int = 256):
        super().__init__()
        self.dim = dim
        self.linear_c = nn.ModuleList(Projection(c, dim) for c in in_channels)
        self.linear_fuse = nn.Conv2d(dim * len(in_channels), dim, kernel_size=1, bias=False)
        self._folded = DerivedCache(max_entries=1)

    def forward(self, stages: list[torch.Tensor]) -> torch.Tensor:
        """Fast path: folded per-stage projections at each stage's own resolution, upsampled, summed."""
        size = stages[0].shape[-2:]
        fused = None
        for x, (weight, bias) in zip(stages, self.folded_weights()):
            y = upsample(pointwise(x, weight, bias), size)
            fused = y if fused is None else fused.add_(y)  # y is a fresh tensor: accumulate in place
        return fused

    def forward_concat(self, stages: list[torch.Tensor]) -> torch.Tensor:
        """Literal formulation: project, upsample, concatenate deep-to-shallow, 1x1 conv."""
        size = stages[0].shape[-2:]
        projected = [upsample(lin(x), size) for lin, x in zip(self.linear_c, stages)]
        return self.linear_fuse(torch.cat(projected[::-1], dim=1))

    def folded_weights(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per stage (A_i: D x C_i, c_i: D); cached while no gradient is recorded and weights are unchanged."""
        return self._folded.get("folded", list(self.parameters()), self._fold)

    def _fold(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.linear_c)
        fuse = self.linear_fuse.weight[:, :, 0, 0]  # D x nD
        folded = []
        for i, lin in enumerate(self.linear_c):
            block = fuse[:, (n - 1 - i) * self.dim:(n - i) * self.dim]  # D x D share of stage i
            folded.append((block @ lin.proj.weight, block @ lin.proj.bias))
        return folded


class LastStageProjection(nn.Module):
    """"w/o fusion" ablation: only the stride-32 stage is projected, then upsampled to stride 4.

    The paper's count (one ``Linear(C_4, D)``, no fuse conv) fixes the parameters; upsampling to
    the stride-4 grid keeps the decoder and output head unchanged (our choice: the facts do not say
    how the ablation reached full resolution).
    """

    def __init__(self, in_channels: tuple[int, ...], dim: int = 256):
        super().__init__()
        self.proj = Projection(in_channels[-1], dim)

    def forward(self, stages: list[torch.Tensor]) -> torch.Tensor:
        return upsample(self.proj(stages[-1]), stages[0].shape[-2:])

    forward_concat = forward  # nothing is concatenated: both formulations coincide
