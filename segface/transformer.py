"""Two-way transformer of Segment Anything: class tokens and face tokens attend to each other."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from segface.attention import Attention


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

    def forward(
        self, tokens: torch.Tensor, faces: torch.Tensor, token_pe: torch.Tensor, face_pe: torch.Tensor,
        attn: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens: B x K x D, faces: B x HW x D; appends the token-to-face attention to ``attn`` if given."""
        if self.skip_first_layer_pe:
            tokens = self.self_attn(tokens, tokens, tokens)
        else:
            q = tokens + token_pe
            tokens = tokens + self.self_attn(q, q, tokens)
        tokens = self.norm1(tokens)

        t2i, i2t = self.cross_attn_token_to_image, self.cross_attn_image_to_token
        q = tokens + token_pe
        k = faces + face_pe
        # the token-to-face keys and the face-to-token queries both project faces + PE: one product
        merged = F.linear(k, torch.cat([t2i.k_proj.weight, i2t.q_proj.weight]),
                          torch.cat([t2i.k_proj.bias, i2t.q_proj.bias]))
        face_keys, face_queries = merged.split([t2i.internal_dim, i2t.internal_dim], dim=-1)
        out = t2i.attend(t2i.q_proj(q), face_keys, t2i.v_proj(faces), return_attn=attn is not None)
        if attn is not None:
            out, weights = out
            attn.append(weights)
        tokens = self.norm2(tokens + out)
        tokens = self.norm3(tokens + self.mlp(tokens))

        q = tokens + token_pe
        faces = self.norm4(faces + i2t.attend(face_queries, i2t.k_proj(q), i2t.v_proj(tokens)))
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

    def forward(
        self, faces: torch.Tensor, face_pe: torch.Tensor, tokens: torch.Tensor,
        attn: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """faces: B x HW x D face tokens, face_pe: 1 x HW x D, tokens: B x K x D (their own query PE).

        Returns the updated (tokens B x K x D, faces B x HW x D); with ``attn`` a list, appends each
        token-to-face attention map (B x heads x K x HW), the final one included.
        """
        token_pe = tokens
        for layer in self.layers:
            tokens, faces = layer(tokens, faces, token_pe, face_pe, attn)
        q = tokens + token_pe
        k = faces + face_pe
        if attn is None:
            tokens = tokens + self.final_attn_token_to_image(q, k, faces)
        else:
            out, weights = self.final_attn_token_to_image(q, k, faces, return_attn=True)
            tokens = tokens + out
            attn.append(weights)
        return self.norm_final_attn(tokens), faces
