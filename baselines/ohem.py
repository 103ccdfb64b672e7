"""Online hard example mining cross-entropy, as face-parsing.PyTorch trained BiSeNet with.

Per-pixel cross-entropy is computed for every pixel; only the "hard" pixels enter the mean:
those whose true-class probability is below ``threshold`` (0.7), i.e. whose loss exceeds
``-log(threshold)``, but never fewer than ``min_kept`` pixels, the hardest ones. face-parsing.PyTorch
sets ``min_kept`` to the number of pixels in the batch divided by 16 (``n_img * H * W // 16``).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from lt_faceparse.taxonomy import IGNORE_INDEX


def _hard_pixels(pixel_loss: torch.Tensor, threshold: float, min_kept_divisor: int) -> torch.Tensor:
    """Positions in the flat ``pixel_loss`` that OHEM averages over: those with a loss above ``-log(threshold)``
    (ascending) when there are more than ``min_kept`` of them, else those of the ``min_kept`` largest losses.
    Counting the hard pixels is this loss's one host synchronisation."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold is a probability in (0, 1], got {threshold}")
    if min_kept_divisor < 1:
        raise ValueError(f"min_kept_divisor must be >= 1, got {min_kept_divisor}")
    min_kept = max(1, pixel_loss.numel() // min_kept_divisor)
    hard = (pixel_loss > -math.log(threshold)).nonzero().squeeze(1)
    if hard.numel() > min_kept:
        return hard
    return pixel_loss.topk(min_kept, sorted=False).indices


def ohem_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    threshold: float = 0.7,
    min_kept_divisor: int = 16,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Mean cross-entropy over the hard pixels of ``logits`` (B x K x H x W) against ``target`` (B x H x W).

    ``min_kept = target.numel() // min_kept_divisor`` counts every pixel of the batch, ignored ones
    included (ignored pixels have loss 0, so they are only ever kept when fewer than ``min_kept``
    pixels carry any loss).
    """
    pixel_loss = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none").flatten()
    return pixel_loss[_hard_pixels(pixel_loss.detach(), threshold, min_kept_divisor)].mean()


def ohem_keep_mask(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    threshold: float = 0.7,
    min_kept_divisor: int = 16,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """B x H x W bool: the pixels :func:`ohem_cross_entropy` averages over (the same rule)."""
    with torch.no_grad():
        pixel_loss = F.cross_entropy(logits, target, ignore_index=ignore_index, reduction="none").flatten()
        hard = _hard_pixels(pixel_loss, threshold, min_kept_divisor)
        keep = torch.zeros_like(pixel_loss, dtype=torch.bool).index_fill_(0, hard, True)
    return keep.view_as(target)


class OhemCrossEntropy(nn.Module):
    """:func:`ohem_cross_entropy` as a module.

    ``pixel_loss``: a long-tail remedy (:mod:`lt_faceparse.longtail`); when set, the hard pixels
    are still chosen from the plain cross-entropy (:func:`ohem_keep_mask`) and the remedy's
    per-pixel loss is averaged over them (ignored pixels excluded).
    """

    pixel_loss_role = ("OHEM chooses the hard pixels from the plain softmax as before; the remedy's per-pixel "
                       "loss is averaged over them in place of CE")

    def __init__(self, threshold: float = 0.7, min_kept_divisor: int = 16, ignore_index: int = IGNORE_INDEX) -> None:
        super().__init__()
        self.threshold = threshold
        self.min_kept_divisor = min_kept_divisor
        self.ignore_index = ignore_index
        self.pixel_loss: nn.Module | None = None

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.pixel_loss is not None:
            keep = ohem_keep_mask(logits, target, threshold=self.threshold, min_kept_divisor=self.min_kept_divisor,
                                  ignore_index=self.ignore_index)
            return self.pixel_loss(logits, target, keep=keep)
        return ohem_cross_entropy(
            logits, target, threshold=self.threshold, min_kept_divisor=self.min_kept_divisor,
            ignore_index=self.ignore_index,
        )

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, min_kept=pixels//{self.min_kept_divisor}"
