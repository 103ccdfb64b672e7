"""How the engine runs any registered parser on a batch: plainly, or inside the RoI tanh-warp."""

from __future__ import annotations

import torch
import torch.nn as nn

WARPS = (None, "tanh")


class BatchRunner(nn.Module):
    """``forward(images, landmarks=None) -> B x K x H x W logits`` in the frame of ``images``.

    ``warp=None`` calls the model directly. ``warp="tanh"`` (LaPa in SegFace) wraps it in
    :class:`lt_faceparse.data.warp.TanhWarp`: images are tanh-warped to ``warped_size`` around the
    face given by the landmarks (5 points, or LaPa's 106), the model runs in the warped frame and its
    logits are warped back, so loss and metrics see the input frame. The wrapped model stays
    reachable as ``.model`` (its state dict is what gets saved).
    """

    def __init__(self, model: nn.Module, warp: str | None = None, warped_size: int = 512):
        super().__init__()
        if warp not in WARPS:
            raise ValueError(f"warp must be one of {WARPS}, got {warp!r}")
        self.warp = warp
        if warp == "tanh":
            from lt_faceparse.data.warp import TanhWarp

            self.net = TanhWarp(model, warped_size)
        else:
            self.net = model
        self.__dict__["model"] = model  # plain reference; the weights are registered once, under .net

    def forward(self, images: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        if self.warp is None:
            return self.net(images)
        if landmarks is None:
            raise ValueError("the tanh-warp needs landmarks, but the batch has none")
        return self.net(images, landmarks)
