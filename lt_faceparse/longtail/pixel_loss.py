"""The shape every loss remedy shares: a per-pixel loss, reduced over the labelled (and kept) pixels.

A :class:`PixelLoss` computes one loss value per pixel (B x H x W) from logits B x K x H x W and
labels B x H x W (255 = ignore). :meth:`PixelLoss.forward` returns the mean over the labelled
pixels, the same reduction as the models' own ``F.cross_entropy(..., ignore_index=255)``; class
weights (Cui et al.) multiply the per-pixel values *before* that mean, so the weights' Σ w = C
normalisation keeps the loss on the scale of plain cross-entropy (under PyTorch's
``Σ w·l / Σ w`` weighting the normalisation would cancel out). ``keep`` restricts the mean to a
subset of the pixels (OHEM's hard pixels). A batch without a labelled pixel gives 0 (with a graph).

Remedy state, where a loss has one (seesaw's accumulated counts), lives in non-persistent buffers:
it never enters a model's ``state_dict`` (weight files stay loadable without the remedy) and is
saved in training checkpoints through :meth:`training_state` / :meth:`load_training_state`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from lt_faceparse.taxonomy import IGNORE_INDEX


class PixelLoss(nn.Module):
    """Base class: subclasses implement :meth:`pixel_losses`."""

    label: str = ""  # e.g. "focal(γ=2)"; set by lt_faceparse.longtail.model_loss.build_pixel_loss

    def __init__(self, ignore_index: int = IGNORE_INDEX):
        super().__init__()
        self.ignore_index = ignore_index

    def pixel_losses(self, logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """B x H x W loss per pixel. ``target`` holds a valid class id everywhere (ignored pixels
        are set to 0; ``valid`` says which are real). Values at invalid pixels are discarded."""
        raise NotImplementedError

    def forward(self, logits: torch.Tensor, target: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        logits = logits.float()
        valid = target != self.ignore_index  # B x H x W
        if keep is not None:
            valid = valid & keep
        safe = torch.where(target != self.ignore_index, target, torch.zeros_like(target))
        losses = self.pixel_losses(logits, safe, valid)  # B x H x W
        # mean over the valid pixels, 0 without any; computed on the device (no host synchronisation)
        total = torch.where(valid, losses, torch.zeros_like(losses)).sum()
        return total / valid.sum().clamp_min(1)

    # ---- state kept across steps (saved in training checkpoints) -----------------------------------
    def training_state(self) -> dict[str, Any]:
        return {}

    def load_training_state(self, state: dict[str, Any]) -> None:
        if state:
            raise ValueError(f"{type(self).__name__} keeps no training state, got {sorted(state)}")


def register_class_vector(module: nn.Module, name: str, values: Any) -> None:
    """A K-vector (float32) that follows the module's device but stays out of ``state_dict``."""
    module.register_buffer(name, torch.as_tensor(values, dtype=torch.float32).clone(), persistent=False)
