"""SegFace (Narayan et al., AAAI 2025): backbone -> MLP fusion -> class-token decoder -> per-class logits."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from segface.backbones import build_backbone
from segface.decoder import SegFaceDecoder
from segface.fusion import LastStageProjection, MLPFusion
from segface.loss import CEDiceLoss
from segface.position import RandomFourierEncoding

STRIDE = 32  # inputs must be divisible by the deepest stage's stride


class SegFace(nn.Module):
    """SegFace for ``num_classes`` labels (token i predicts label id i, background included).

    ``forward(images)``: B x 3 x H x W ImageNet-normalised images (H, W divisible by 32) -> logits
    B x K x H x W. ``forward(images, return_extras=True)`` -> ``(logits, {"token_masks": the per-token
    mask logits S_i, B x K x H x W (SegFace's logits are exactly the S_i), "attn": per decoder layer
    the token-to-face attention B x heads x K x (H/4 * W/4), the final token-to-face attention
    last})``; the maps are computed only when asked.

    The default forward computes the paper's function through exact refactorings (equal up to
    float rounding; tested against the literal formulation): the fusion's per-stage share of the
    fuse conv folded into each stage's Linear and applied at the stage's own resolution
    (:mod:`segface.fusion`); the positional encoding cached per grid size; in each two-way block
    one product for the three projections of the face tokens, with the PE's share a cached
    constant of the grid (:func:`segface.transformer.project_faces`); face-to-token attention in
    key-major layout (:class:`segface.attention.Attention`); and the output head as sub-pixel
    matrix products on bands of face rows, writing each logit row in place
    (:func:`segface.decoder.subpixel_head`). Caches hold a few tensors per grid size (about 80 MB
    at 512 px) and are bypassed while gradients flow.

    State-dict layout: ``backbone.*`` (torchvision names), ``pe_layer.*``, ``fusion.*``,
    ``face_decoder.*`` (Segment Anything names). ``literal = True`` switches to the paper's literal
    formulation (concatenation fusion, uncached positional encoding, each face projection of faces + PE
    as written, transposed convolutions and the per-pixel class products) for checks and benchmarks.
    """

    def __init__(
        self,
        backbone: str = "swin_base",
        num_classes: int = 19,
        fusion: bool = True,
        pretrained: bool | str = False,
        dim: int = 256,
        ce_weight: float = 0.5,
        dice_weight: float = 0.5,
    ):
        super().__init__()
        self.build_kwargs: dict[str, Any] = {
            "backbone": backbone, "num_classes": num_classes, "fusion": fusion, "pretrained": pretrained,
            "dim": dim, "ce_weight": ce_weight, "dice_weight": dice_weight,
        }
        self.num_classes = num_classes
        self.backbone = build_backbone(backbone, pretrained)
        self.pe_layer = RandomFourierEncoding(dim)
        channels = tuple(self.backbone.channels)
        self.fusion = MLPFusion(channels, dim) if fusion else LastStageProjection(channels, dim)
        self.face_decoder = SegFaceDecoder(num_classes, dim)
        self.criterion = CEDiceLoss(ce_weight, dice_weight)
        self.literal = False

    def forward(
        self, images: torch.Tensor, return_extras: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
        height, width = images.shape[-2:]
        if height % STRIDE or width % STRIDE:
            raise ValueError(f"SegFace input size must be divisible by {STRIDE}, got {height} x {width}")
        stages = self.backbone(images)
        if self.literal:
            faces = self.fusion.forward_concat(stages)  # B x D x H/4 x W/4
            face_pe = self.pe_layer.encode(*faces.shape[-2:])
        else:
            faces = self.fusion(stages)
            face_pe = self.pe_layer(*faces.shape[-2:], dtype=faces.dtype)
        attn: list[torch.Tensor] | None = [] if return_extras else None
        logits = self.face_decoder(faces, face_pe.to(faces.dtype), attn, literal=self.literal)
        if return_extras:
            return logits, {"token_masks": logits, "attn": attn}
        return logits

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.criterion(logits, target)
