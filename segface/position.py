"""Random Fourier positional encoding of the face-token grid (as in Segment Anything)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from segface.cache import DerivedCache


class RandomFourierEncoding(nn.Module):
    """Encode pixel centres with random Fourier features: ``[sin(2 pi c G), cos(2 pi c G)]``.

    ``c`` = (x, y) of each pixel centre normalised to [0, 1] and mapped to [-1, 1]; ``G`` (2 x D/2,
    drawn from N(0, 1) at construction) is a saved buffer, so a checkpoint restores it.

    The encoding depends only on the grid size and ``G``; it is cached per (size, device, dtype)
    and recomputed whenever ``G`` changes (its version counter moves on every in-place write,
    e.g. ``load_state_dict``).
    """

    def __init__(self, dim: int = 256):
        super().__init__()
        self.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, dim // 2))
        self._cache = DerivedCache()

    def encode(self, height: int, width: int) -> torch.Tensor:
        """D x height x width encoding, computed from scratch."""
        g = self.positional_encoding_gaussian_matrix
        ys = (torch.arange(height, device=g.device, dtype=g.dtype) + 0.5) / height
        xs = (torch.arange(width, device=g.device, dtype=g.dtype) + 0.5) / width
        coords = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # H x W x 2, (x, y)
        proj = (2 * coords - 1) @ g * (2 * math.pi)  # H x W x D/2
        return torch.cat([proj.sin(), proj.cos()], dim=-1).permute(2, 0, 1)

    def forward(self, height: int, width: int, dtype: torch.dtype | None = None) -> torch.Tensor:
        """D x height x width encoding in ``dtype`` (default: the buffer's), cached."""
        return self._cache.get((height, width, dtype), [self.positional_encoding_gaussian_matrix],
                               lambda: self.encode(height, width).to(dtype))
