"""Logit-adjusted cross-entropy (Menon et al., ICLR 2021): CE on z_c + τ log π_c per pixel, with
π the pixel prior of the training split. The model's own logits stay unadjusted: at test time it
predicts argmax z, which is what makes the training-time adjustment favour rare classes."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from lt_faceparse.longtail.pixel_loss import PixelLoss, register_class_vector
from lt_faceparse.taxonomy import IGNORE_INDEX


class LogitAdjustedLoss(PixelLoss):
    """``log_prior``: K values log π_c (finite); ``tau``: τ >= 0."""

    def __init__(self, log_prior: Sequence[float], tau: float = 1.0, ignore_index: int = IGNORE_INDEX):
        super().__init__(ignore_index)
        self.tau = float(tau)
        register_class_vector(self, "log_prior", log_prior)

    def pixel_losses(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        adjusted = logits + self.tau * self.log_prior.view(1, -1, 1, 1)
        return F.cross_entropy(adjusted, target, reduction="none")

    def extra_repr(self) -> str:
        return f"tau={self.tau}"
