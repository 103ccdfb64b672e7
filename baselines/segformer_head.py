"""SegFormer-style all-MLP head on a SegFace backbone: SegFace without its class-token decoder.

The four backbone stages go through SegFace's own multi-scale MLP fusion
(:class:`segface.fusion.MLPFusion`: per-stage linear projection to ``dim`` channels, bilinear
upsampling to stride 4, concatenation, 1x1 fuse conv); then, as in SegFormer's decode head,
BatchNorm + ReLU and dropout, a per-pixel linear classifier (1x1 conv) and bilinear upsampling
from stride 4 to the input. Same backbone, fusion, resolution and loss (0.5 CE + 0.5 Dice) as
SegFace: the ablation isolating the transformer decoder with class tokens.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from segface.backbones import build_backbone
from segface.fusion import MLPFusion
from segface.loss import CEDiceLoss


class SegFormerHead(nn.Module):
    """SegFace backbone + MLP fusion + per-pixel linear classifier: B x 3 x H x W -> B x K x H x W.

    Args:
        backbone: any name :func:`segface.backbones.build_backbone` accepts.
        num_classes: K.
        pretrained: backbone initialisation (see ``build_backbone``).
        dim: fused width (SegFace uses 256).
        dropout: channel dropout before the classifier (SegFormer uses 0.1).
        ce_weight, dice_weight: loss weights, SegFace's 0.5 / 0.5 by default.
    """

    def __init__(
        self,
        backbone: str = "swin_base",
        num_classes: int = 19,
        pretrained: bool | str = False,
        dim: int = 256,
        dropout: float = 0.1,
        ce_weight: float = 0.5,
        dice_weight: float = 0.5,
    ) -> None:
        super().__init__()
        self.build_kwargs: dict[str, Any] = {
            "backbone": backbone, "num_classes": num_classes, "pretrained": pretrained, "dim": dim,
            "dropout": dropout, "ce_weight": ce_weight, "dice_weight": dice_weight,
        }
        self.backbone = build_backbone(backbone, pretrained)
        self.fusion = MLPFusion(tuple(self.backbone.channels), dim)
        self.norm = nn.BatchNorm2d(dim)
        self.dropout = nn.Dropout2d(dropout)
        self.classifier = nn.Conv2d(dim, num_classes, 1)
        self.criterion = CEDiceLoss(ce_weight, dice_weight)

    def forward(
        self, images: torch.Tensor, return_extras: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
        """B x 3 x H x W -> B x K x H x W logits (``return_extras``: also an empty extras dict)."""
        fused = self.fusion(self.backbone(images))  # dim x H/4 x W/4
        logits = self.classifier(self.dropout(F.relu(self.norm(fused))))
        logits = F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)
        return (logits, {}) if return_extras else logits

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.criterion(logits, target)
