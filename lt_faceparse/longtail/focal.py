"""Focal loss (Lin et al., ICCV 2017): FL = −α_y (1 − p_y)^γ log p_y per pixel, mean over the
labelled pixels. γ = 0 is cross-entropy. α: optional class weights (Cui et al.'s class-balanced
focal loss uses the effective-number weights); without them α_y = 1."""

from __future__ import annotations

from typing import Sequence

import torch

from lt_faceparse.longtail.pixel_loss import PixelLoss, register_class_vector
from lt_faceparse.taxonomy import IGNORE_INDEX


class FocalLoss(PixelLoss):
    def __init__(self, gamma: float = 2.0, alpha: Sequence[float] | None = None, ignore_index: int = IGNORE_INDEX):
        super().__init__(ignore_index)
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.alpha: torch.Tensor | None
        if alpha is None:
            self.alpha = None
        else:
            register_class_vector(self, "alpha", alpha)

    def pixel_losses(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        log_p = logits.log_softmax(1).gather(1, target.unsqueeze(1)).squeeze(1)  # B x H x W, log p_y
        p = log_p.exp()
        loss = -((1.0 - p).clamp(min=0.0) ** self.gamma) * log_p
        return loss if self.alpha is None else self.alpha[target] * loss

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, alpha={'none' if self.alpha is None else 'class weights'}"
