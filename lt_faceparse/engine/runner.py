"""How the engine runs any registered parser on a batch: plainly, or inside the RoI tanh-warp."""

from __future__ import annotations

import torch
import torch.nn as nn

from lt_faceparse.data.warp import TanhWarp
from lt_faceparse.models import model_capabilities

WARPS = (None, "tanh")


class BatchRunner(nn.Module):
    """``forward(images, landmarks=None) -> B x K x H x W logits`` in the frame of ``images``.

    ``warp=None`` calls the model directly. ``warp="tanh"`` (LaPa in SegFace) wraps it in
    :class:`lt_faceparse.data.warp.TanhWarp`: images are tanh-warped to ``warped_size`` around the
    face given by the landmarks (5 points, or LaPa's 106), the model runs in the warped frame and its
    logits are warped back, so loss and metrics see the input frame. The wrapped model stays
    reachable as ``.model`` (its state dict is what gets saved).

    Models whose ``loss`` takes ``extras`` (BiSeNet's auxiliary heads) get ``(logits, extras)`` back
    in training mode without a warp, so every head they train is trained; otherwise logits only.
    """

    def __init__(self, model: nn.Module, warp: str | None = None, warped_size: int = 512):
        super().__init__()
        if warp not in WARPS:
            raise ValueError(f"warp must be one of {WARPS}, got {warp!r}")
        self.warp = warp
        if warp == "tanh":
            self.net = TanhWarp(model, warped_size)
        else:
            self.net = model
        self.__dict__["model"] = model  # plain reference; the weights are registered once, under .net
        self.loss_takes_extras = model_capabilities(model).loss_takes_extras

    def compute_loss(self, output: torch.Tensor | tuple, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(loss, logits) from what :meth:`forward` returned."""
        if isinstance(output, tuple):
            logits, extras = output
            return self.model.loss(logits, target, extras), logits
        return self.model.loss(output, target), output

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor | tuple:
        if self.warp is None:
            if self.training and self.loss_takes_extras:
                return self.net(images, return_extras=True)
            return self.net(images)
        if landmarks is None:
            raise ValueError("the tanh-warp needs landmarks, but the batch has none")
        return self.net(images, landmarks)
