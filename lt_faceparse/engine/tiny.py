"""A tiny LayerNorm-only face parser for tests and CPU smoke configs (registry name ``"tiny"``).

It follows the model interface of the library (ImageNet-normalised B x 3 x H x W in, B x K x H x W
logits out, ``loss``, ``build_kwargs``) with a few thousand parameters. It has no BatchNorm, so a
step's gradient does not depend on how the global batch is split across ranks: the property the
distributed-training tests check.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from lt_faceparse.taxonomy import IGNORE_INDEX
from segface.decoder import LayerNorm2d  # a model module: imported only when "tiny" is built


class TinyParser(nn.Module):
    """conv(stride 2) -> LN -> GELU -> conv -> LN -> GELU -> 1x1 classifier -> bilinear upsampling."""

    def __init__(self, num_classes: int = 19, width: int = 16):
        super().__init__()
        self.build_kwargs = {"num_classes": num_classes, "width": width}
        self.stem = nn.Conv2d(3, width, 3, stride=2, padding=1)
        self.norm1 = LayerNorm2d(width)
        self.conv = nn.Conv2d(width, width, 3, padding=1)
        self.norm2 = LayerNorm2d(width)
        self.classifier = nn.Conv2d(width, num_classes, 1)
        self.criterion: nn.Module = nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.norm1(self.stem(images)))  # B x W x H/2 x W/2
        x = F.gelu(self.norm2(self.conv(x)))
        logits = self.classifier(x)  # B x K x H/2 x W/2
        return F.interpolate(logits, size=images.shape[-2:], mode="bilinear", align_corners=False)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Pixel-mean cross-entropy; 255 is ignored."""
        return self.criterion(logits.float(), target)
