"""FCN-8s-style per-pixel classifier on a SegFace backbone: the plain CNN decoder baseline.

Same backbone, resolution and loss (0.5 CE + 0.5 Dice) as SegFace, but no class tokens and no
transformer: the deepest stage (stride 32) goes through two 3x3 conv-BN-ReLU layers and a 1x1
classifier; 1x1 score layers on the stride-16 and stride-8 stages are added after bilinear
upsampling (the FCN-8s skip fusion); the stride-8 scores are upsampled bilinearly to the input.
The stride-4 stage is not used. This is the control for "what do class tokens add".
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from segface.backbones import build_backbone
from segface.loss import CEDiceLoss


def conv_bn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def _upsample(x: torch.Tensor, size: torch.Size | tuple[int, int]) -> torch.Tensor:
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class FCN(nn.Module):
    """SegFace backbone + FCN-8s decoder: B x 3 x H x W -> B x K x H x W logits.

    Args:
        backbone: any name :func:`segface.backbones.build_backbone` accepts (``swin_base``, ...).
        num_classes: K.
        pretrained: backbone initialisation (see ``build_backbone``).
        channels: width of the two 3x3 layers on the stride-32 stage.
        dropout: channel dropout before the stride-32 classifier.
        ce_weight, dice_weight: loss weights, SegFace's 0.5 / 0.5 by default.
    """

    def __init__(
        self,
        backbone: str = "swin_base",
        num_classes: int = 19,
        pretrained: bool | str = False,
        channels: int = 256,
        dropout: float = 0.1,
        ce_weight: float = 0.5,
        dice_weight: float = 0.5,
    ) -> None:
        super().__init__()
        self.build_kwargs: dict[str, Any] = {
            "backbone": backbone, "num_classes": num_classes, "pretrained": pretrained, "channels": channels,
            "dropout": dropout, "ce_weight": ce_weight, "dice_weight": dice_weight,
        }
        self.backbone = build_backbone(backbone, pretrained)
        _, c8, c16, c32 = self.backbone.channels
        self.head32 = nn.Sequential(conv_bn_relu(c32, channels), conv_bn_relu(channels, channels), nn.Dropout2d(dropout))
        self.score32 = nn.Conv2d(channels, num_classes, 1)
        self.score16 = nn.Conv2d(c16, num_classes, 1)
        self.score8 = nn.Conv2d(c8, num_classes, 1)
        self.criterion = CEDiceLoss(ce_weight, dice_weight)

    def forward(
        self, images: torch.Tensor, return_extras: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
        """B x 3 x H x W -> B x K x H x W logits (``return_extras``: also an empty extras dict)."""
        _, feat8, feat16, feat32 = self.backbone(images)
        scores = self.score32(self.head32(feat32))  # K x H/32
        scores = self.score16(feat16) + _upsample(scores, feat16.shape[-2:])  # K x H/16
        scores = self.score8(feat8) + _upsample(scores, feat8.shape[-2:])  # K x H/8
        logits = _upsample(scores, images.shape[-2:])
        return (logits, {}) if return_extras else logits

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.criterion(logits, target)
