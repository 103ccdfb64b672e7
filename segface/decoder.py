"""SegFace decoder: learnable class tokens, two-way transformer, upscaling and the shared hypernetwork MLP."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from segface.transformer import TwoWayTransformer


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of a B x C x H x W map (eps 1e-6, as in Segment Anything)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # normalise a channels-last view: the per-pixel channel vector is contiguous there
        y = F.layer_norm(x.permute(0, 2, 3, 1), self.weight.shape, self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU between them (none after the last)."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int):
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class SegFaceDecoder(nn.Module):
    """Face tokens (B x D x h x w, stride 4) + their PE -> per-class mask logits S_i (B x K x 4h x 4w).

    One learned D-dim token per class (token i predicts label id i). After the two-way transformer,
    the face tokens are upscaled x4 to D/8 channels (``U``), the class tokens pass through one MLP
    shared by all classes, and ``S_i(x, y) = <U(x, y), MLP(T_i)>``.
    """

    def __init__(self, num_classes: int, dim: int = 256, depth: int = 2, num_heads: int = 8,
                 mlp_dim: int = 2048):
        super().__init__()
        self.num_classes = num_classes
        self.class_tokens = nn.Embedding(num_classes, dim)
        self.transformer = TwoWayTransformer(depth, dim, num_heads, mlp_dim, downsample_rate=2)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(dim, dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(dim // 4, dim // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        # one MLP shared by every class token (the release's name is plural)
        self.output_hypernetwork_mlps = MLP(dim, dim, dim // 8, num_layers=3)

    def forward(
        self, faces: torch.Tensor, face_pe: torch.Tensor, attn: list[torch.Tensor] | None = None,
        literal: bool = False,
    ) -> torch.Tensor:
        """faces: B x D x h x w, face_pe: D x h x w -> logits B x K x 4h x 4w.

        ``literal``: run the transposed convolutions and the per-pixel product as written; the
        default computes the same numbers as sub-pixel matrix products (see :func:`subpixel_head`).
        """
        b, d, h, w = faces.shape
        tokens = self.class_tokens.weight.unsqueeze(0).repeat(b, 1, 1)  # B x K x D (a copy: no view of a parameter)
        face_seq = faces.flatten(2).transpose(1, 2)  # B x hw x D
        pe_seq = face_pe.flatten(1).transpose(0, 1).unsqueeze(0)  # 1 x hw x D
        tokens, face_seq = self.transformer(face_seq, pe_seq, tokens, attn)
        weights = self.output_hypernetwork_mlps(tokens)  # B x K x D/8
        if not literal:
            return subpixel_head(face_seq, (h, w), self.output_upscaling, weights)
        upscaled = self.output_upscaling(face_seq.transpose(1, 2).reshape(b, d, h, w))  # B x D/8 x 4h x 4w
        return torch.einsum("bkc,bchw->bkhw", weights, upscaled)


def subpixel_linear(x: torch.Tensor, up: nn.ConvTranspose2d) -> torch.Tensor:
    """A stride-2, 2x2 transposed convolution on pixel rows ``x`` (... x C_in) as one matrix product.

    Each input pixel produces its 2 x 2 output pixels independently, so the result is
    ... x (2 * 2 * C_out) in (di, dj, channel) order: sub-pixel (di, dj) of every pixel, not yet
    interleaved into the larger grid.
    """
    c_in, c_out = up.weight.shape[:2]
    weight = up.weight.permute(2, 3, 1, 0).reshape(4 * c_out, c_in)
    return F.linear(x, weight, up.bias.repeat(4))


def subpixel_head(
    face_seq: torch.Tensor, size: tuple[int, int], upscaling: nn.Sequential, weights: torch.Tensor
) -> torch.Tensor:
    """``einsum(weights, upscaling(faces))`` without transposed convolutions.

    Both transposed convolutions act on each pixel separately, and LayerNorm2d and GELU are
    per-pixel too, so every step runs on pixel rows in sub-pixel order (i, j, di1, dj1, di2, dj2);
    one permutation then puts output pixel (4i + 2 di1 + di2, 4j + 2 dj1 + dj2) in place (on the
    D/8-channel rows, whose channels stay contiguous), and one batched product gives all logits.
    face_seq: B x hw x D (row-major pixels), weights: B x K x D/8 -> logits B x K x 4h x 4w.
    """
    up1, norm, act1, up2, act2 = upscaling
    b, (h, w) = face_seq.shape[0], size
    y = subpixel_linear(face_seq, up1).reshape(b, h * w * 4, -1)  # B x (i j di1 dj1) x D/4
    y = act1(F.layer_norm(y, norm.weight.shape, norm.weight, norm.bias, norm.eps))
    y = act2(subpixel_linear(y, up2))  # B x (i j di1 dj1) x (di2 dj2 D/8)
    c = y.shape[-1] // 4
    y = y.view(b, h, w, 2, 2, 2, 2, c).permute(0, 1, 3, 5, 2, 4, 6, 7).reshape(b, 16 * h * w, c)  # image order
    return torch.bmm(weights, y.transpose(1, 2)).view(b, -1, 4 * h, 4 * w)
