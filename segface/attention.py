"""Multi-head attention with an optional down-projected internal dimension (Segment Anything style)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class Attention(nn.Module):
    """Attention whose queries, keys and values are projected to ``dim // downsample_rate`` channels.

    ``forward(q, k, v)`` with q: B x Nq x dim, k and v: B x Nk x dim returns B x Nq x dim, and with
    ``return_attn=True`` also the attention weights B x heads x Nq x Nk.

    With few keys (face-to-token attention: 16,384 face queries at 512 px against K class-token
    keys) and ``key_major`` (the CPU and literal formulations), the attention is formed explicitly
    in key-major layout, B x heads x Nk x Nq: the key projections carry the scale, one product gives
    every score, the softmax runs over the short key axis vectorised along the long query axis, and
    a transposed product applies the weights (measured 25 -> 8 ms per call on one CPU thread against
    the query-major form). Otherwise the fused scaled-dot-product kernel runs (flash or
    memory-efficient attention on CUDA); with ``return_attn`` the query-major weights are formed to
    be returned. All compute the same softmax(q k^T / sqrt(d)) v.
    """

    explicit_max_keys = 64

    def __init__(self, dim: int, num_heads: int, downsample_rate: int = 1):
        super().__init__()
        self.internal_dim = dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim % num_heads:
            raise ValueError(f"num_heads {num_heads} must divide the internal dim {self.internal_dim}")
        self.q_proj = nn.Linear(dim, self.internal_dim)
        self.k_proj = nn.Linear(dim, self.internal_dim)
        self.v_proj = nn.Linear(dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, dim)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        return x.reshape(b, n, self.num_heads, c // self.num_heads).transpose(1, 2)  # B x h x N x c/h

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, return_attn: bool = False, key_major: bool = True
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        return self.attend(self.q_proj(q), self.k_proj(k), self.v_proj(v), return_attn, key_major)

    def attend(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, return_attn: bool = False, key_major: bool = True
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Attention of already projected q (B x Nq x internal), k and v (B x Nk x internal)."""
        if return_attn:
            q, k, v = self._heads(q), self._heads(k), self._heads(v)
            attn = torch.softmax(q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5, dim=-1)
            out = attn @ v
        elif key_major and k.shape[-2] <= self.explicit_max_keys:
            b, n, c = q.shape
            q_t = q.view(b, n, self.num_heads, c // self.num_heads).permute(0, 2, 3, 1)  # B x h x c/h x Nq
            k = self._heads(k) * (c // self.num_heads) ** -0.5  # B x h x Nk x c/h
            weights = torch.softmax(k @ q_t, dim=-2)  # B x h x Nk x Nq
            out = weights.transpose(-2, -1) @ self._heads(v)
        else:
            out = F.scaled_dot_product_attention(self._heads(q), self._heads(k), self._heads(v))
        b, h, n, c = out.shape
        out = self.out_proj(out.transpose(1, 2).reshape(b, n, h * c))
        return (out, attn) if return_attn else out
