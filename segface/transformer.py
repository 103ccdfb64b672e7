"""Two-way transformer of Segment Anything: class tokens and face tokens attend to each other."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from segface.attention import Attention
from segface.cache import DerivedCache, caching_allowed
from segface.formulation import LITERAL, Formulation


def stack(layers: list[nn.Linear]) -> tuple[torch.Tensor, torch.Tensor]:
    """The weights (sum of outputs x D) and biases of ``layers``, stacked."""
    return torch.cat([lin.weight for lin in layers]), torch.cat([lin.bias for lin in layers])


def project_faces(
    faces: torch.Tensor, face_pe: torch.Tensor, with_pe: list[nn.Linear], without_pe: list[nn.Linear],
    cache: DerivedCache | None,
) -> list[torch.Tensor]:
    """``[lin(faces + face_pe) for lin in with_pe] + [lin(faces) for lin in without_pe]``, B x HW x out each.

    In inference the weights are stacked into one product on the faces, and the PE's share (its
    products with the ``with_pe`` weights, and every bias) is a constant of the grid, cached in
    ``cache``: ``faces W^T + [face_pe W_pe^T + b_pe, b_rest]``. With gradients the two groups are
    computed as written (the PE's product would cost as much as the faces'), and so they are
    without a ``cache`` (the literal formulation, or while compiling).
    faces: B x HW x D, face_pe: 1 x HW x D.
    """
    sizes = [lin.out_features for lin in with_pe + without_pe]
    sources = [t for lin in with_pe + without_pe for t in (lin.weight, lin.bias)]
    if cache is None or not caching_allowed(sources):
        (w_pe, b_pe), (w_rest, b_rest) = stack(with_pe), stack(without_pe)
        n = len(with_pe)
        keys = F.linear(faces + face_pe, w_pe, b_pe).split(sizes[:n], dim=-1)
        return [*keys, *F.linear(faces, w_rest, b_rest).split(sizes[n:], dim=-1)]

    def stacked() -> tuple[torch.Tensor, torch.Tensor]:  # built only when the weights or the grid change
        (w_pe, b_pe), (w_rest, b_rest) = stack(with_pe), stack(without_pe)
        pe_part = F.linear(face_pe, w_pe, b_pe)  # 1 x HW x out_pe
        rest = b_rest.expand(*pe_part.shape[:-1], -1)
        return torch.cat([w_pe, w_rest]).t(), torch.cat([pe_part, rest], dim=-1)

    weight_t, pe_term = cache.get("stacked", [*sources, face_pe], stacked)  # D x out, 1 x HW x out
    return list((faces @ weight_t).add_(pe_term).split(sizes, dim=-1))


class MLPBlock(nn.Module):
    """``lin2(act(lin1(x)))``."""

    def __init__(self, dim: int, hidden_dim: int, act: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.lin1 = nn.Linear(dim, hidden_dim)
        self.lin2 = nn.Linear(hidden_dim, dim)
        self.act = act()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(self.act(self.lin1(x)))


class TwoWayAttentionBlock(nn.Module):
    """Token self-attention, token-to-face attention, token MLP, face-to-token attention.

    Each step is followed by a LayerNorm. The first block skips the positional encoding in its
    token self-attention and has no residual there.
    """

    def __init__(self, dim: int, num_heads: int, mlp_dim: int, downsample_rate: int = 2,
                 skip_first_layer_pe: bool = False):
        super().__init__()
        self.self_attn = Attention(dim, num_heads)
        self.norm1 = nn.LayerNorm(dim)
        self.cross_attn_token_to_image = Attention(dim, num_heads, downsample_rate)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLPBlock(dim, mlp_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.norm4 = nn.LayerNorm(dim)
        self.cross_attn_image_to_token = Attention(dim, num_heads, downsample_rate)
        self.skip_first_layer_pe = skip_first_layer_pe
        self._face_projections = DerivedCache(max_entries=4)  # per grid: HW x 3D/2 floats

    def forward(
        self, tokens: torch.Tensor, faces: torch.Tensor, token_pe: torch.Tensor, face_pe: torch.Tensor,
        attn: list[torch.Tensor] | None = None, formulation: Formulation = LITERAL,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens: B x K x D, faces: B x HW x D; appends the token-to-face attention to ``attn`` if given.

        ``formulation``: whether the PE's share of the face projections is cached and which kernel
        attends over few keys (:mod:`segface.formulation`)."""
        key_major = formulation.key_major
        if self.skip_first_layer_pe:
            tokens = self.self_attn(tokens, tokens, tokens, key_major=key_major)
        else:
            q = tokens + token_pe
            tokens = tokens + self.self_attn(q, q, tokens, key_major=key_major)
        tokens = self.norm1(tokens)

        t2i, i2t = self.cross_attn_token_to_image, self.cross_attn_image_to_token
        cache = self._face_projections if formulation.cached_constants else None
        face_keys, face_queries, face_values = project_faces(
            faces, face_pe, [t2i.k_proj, i2t.q_proj], [t2i.v_proj], cache)
        out = t2i.attend(t2i.q_proj(tokens + token_pe), face_keys, face_values, return_attn=attn is not None,
                         key_major=key_major)
        if attn is not None:
            out, weights = out
            attn.append(weights)
        tokens = self.norm2(tokens + out)
        tokens = self.norm3(tokens + self.mlp(tokens))

        q = tokens + token_pe
        faces = self.norm4(faces + i2t.attend(face_queries, i2t.k_proj(q), i2t.v_proj(tokens), key_major=key_major))
        return tokens, faces


class TwoWayTransformer(nn.Module):
    """``depth`` two-way blocks, then one more token-to-face attention and a LayerNorm."""

    def __init__(self, depth: int = 2, dim: int = 256, num_heads: int = 8, mlp_dim: int = 2048,
                 downsample_rate: int = 2):
        super().__init__()
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(dim, num_heads, mlp_dim, downsample_rate, skip_first_layer_pe=(i == 0))
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(dim, num_heads, downsample_rate)
        self.norm_final_attn = nn.LayerNorm(dim)
        self._face_projections = DerivedCache(max_entries=4)  # per grid: HW x 3D/2 floats

    def forward(
        self, faces: torch.Tensor, face_pe: torch.Tensor, tokens: torch.Tensor,
        attn: list[torch.Tensor] | None = None, formulation: Formulation = LITERAL,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """faces: B x HW x D face tokens, face_pe: 1 x HW x D, tokens: B x K x D (their own query PE).

        Returns the updated (tokens B x K x D, faces B x HW x D); with ``attn`` a list, appends each
        token-to-face attention map (B x heads x K x HW), the final one included.
        """
        token_pe = tokens
        for layer in self.layers:
            tokens, faces = layer(tokens, faces, token_pe, face_pe, attn, formulation)
        final = self.final_attn_token_to_image
        cache = self._face_projections if formulation.cached_constants else None
        keys, values = project_faces(faces, face_pe, [final.k_proj], [final.v_proj], cache)
        out = final.attend(final.q_proj(tokens + token_pe), keys, values, return_attn=attn is not None,
                           key_major=formulation.key_major)
        if attn is not None:
            out, weights = out
            attn.append(weights)
        tokens = tokens + out
        return self.norm_final_attn(tokens), faces
