"""SegFace decoder: learnable class tokens, two-way transformer, upscaling and the shared hypernetwork MLP."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from segface.formulation import LITERAL, Formulation
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
        formulation: Formulation = LITERAL,
    ) -> torch.Tensor:
        """faces: B x D x h x w, face_pe: D x h x w -> logits B x K x 4h x 4w.

        The output head runs the transposed convolutions and the per-pixel class product as written,
        or, with ``formulation.banded_head``, the same numbers as sub-pixel matrix products on bands
        of rows (see :func:`subpixel_head`).
        """
        b, d, h, w = faces.shape
        tokens = self.class_tokens.weight.unsqueeze(0).repeat(b, 1, 1)  # B x K x D (a copy: no view of a parameter)
        face_seq = faces.flatten(2).transpose(1, 2)  # B x hw x D
        pe_seq = face_pe.flatten(1).transpose(0, 1).unsqueeze(0)  # 1 x hw x D
        tokens, face_seq = self.transformer(face_seq, pe_seq, tokens, attn, formulation)
        weights = self.output_hypernetwork_mlps(tokens)  # B x K x D/8
        if formulation.banded_head:
            return subpixel_head(face_seq, (h, w), self.output_upscaling, weights)
        upscaled = self.output_upscaling(face_seq.transpose(1, 2).reshape(b, d, h, w))  # B x D/8 x 4h x 4w
        return torch.einsum("bkc,bchw->bkhw", weights, upscaled)


def subpixel_rows(up: nn.ConvTranspose2d) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A stride-2, 2x2 transposed convolution as two per-pixel Linear maps, one per output row offset.

    Each input pixel produces its 2 x 2 output pixels independently; for row offset ``di`` the map
    C_in -> (dj, C_out) gives the pixel's two outputs on that row, side by side. Returns
    ``[(weight (2 C_out) x C_in, bias 2 C_out) for di in (0, 1)]``.
    """
    c_in = up.weight.shape[0]
    return [(up.weight[:, :, di].permute(2, 1, 0).reshape(-1, c_in), up.bias.repeat(2)) for di in range(2)]


HEAD_CHUNK_PIXELS = 1024  # face tokens per step of the head: its temporaries stay in the CPU cache


def subpixel_head(
    face_seq: torch.Tensor, size: tuple[int, int], upscaling: nn.Sequential, weights: torch.Tensor
) -> torch.Tensor:
    """``einsum(weights, upscaling(faces))`` without transposed convolutions or permutations.

    Both transposed convolutions, LayerNorm2d and GELU act on each pixel separately, so the head runs
    on pixel rows, a band of face-token rows at a time. Output row ``4i + 2 di1 + di2`` comes from
    face row ``i`` through the first convolution's row ``di1`` map and the second's row ``di2`` map
    (:func:`subpixel_rows`); those maps put each row's output pixels in image order
    ``(j, dj1, dj2)``, so one batched product with the class weights gives a whole logit row, written
    straight into place.
    face_seq: B x hw x D (row-major pixels), weights: B x K x D/8 -> logits B x K x 4h x 4w.
    """
    up1, norm, act1, up2, act2 = upscaling
    b, (h, w) = face_seq.shape[0], size
    first, second = subpixel_rows(up1), subpixel_rows(up2)
    channels = up2.weight.shape[1]
    logits = face_seq.new_empty(b, weights.shape[1], h, 4, 4 * w)  # B x K x i x (2 di1 + di2) x 4w
    faces = face_seq.view(b, h, w, -1)
    band = max(1, HEAD_CHUNK_PIXELS // w)
    for top in range(0, h, band):
        x = faces[:, top:top + band]  # B x r x w x D
        rows = x.shape[1]
        for di1, (w1, b1) in enumerate(first):
            y = F.linear(x, w1, b1).view(b, rows, 2 * w, -1)  # B x r x (j dj1) x D/4
            y = act1(F.layer_norm(y, norm.weight.shape, norm.weight, norm.bias, norm.eps))
            for di2, (w2, b2) in enumerate(second):
                z = act2(F.linear(y, w2, b2)).view(b, rows * 4 * w, channels)  # B x (r j dj1 dj2) x D/8
                row = torch.bmm(weights, z.transpose(1, 2))  # B x K x (r 4w)
                logits[:, :, top:top + rows, 2 * di1 + di2] = row.view(b, -1, rows, 4 * w)
    return logits.view(b, -1, 4 * h, 4 * w)
