"""Class-weighted cross-entropy (Cui et al., CVPR 2019): per pixel w_y · CE(z, y), mean over the
labelled pixels; weights from :mod:`lt_faceparse.longtail.class_weights` (Σ w = C)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from lt_faceparse.longtail.pixel_loss import PixelLoss, register_class_vector
from lt_faceparse.taxonomy import IGNORE_INDEX


class WeightedCrossEntropy(PixelLoss):
    """``weights``: K class weights (index = class id)."""

    def __init__(self, weights: Sequence[float], ignore_index: int = IGNORE_INDEX):
        super().__init__(ignore_index)
        register_class_vector(self, "class_weights", weights)

    def pixel_losses(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        ce = F.cross_entropy(logits, target, reduction="none")  # B x H x W
        return self.class_weights[target] * ce

    def extra_repr(self) -> str:
        return f"weights={[round(float(w), 4) for w in self.class_weights]}"
