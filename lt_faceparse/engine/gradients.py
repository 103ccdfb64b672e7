"""Gradient norm of the last optimizer step, for the logs (computed only when a step is logged)."""

from __future__ import annotations

from typing import Iterable

import torch


def gradient_norm(parameters: Iterable[torch.nn.Parameter]) -> torch.Tensor | None:
    """L2 norm of all gradients held by ``parameters``, as a 0-dim tensor on their device (reading it
    is the caller's host synchronisation); None when no parameter has a gradient.

    Called after the optimizer step, it sees that step's gradients (they stay on the parameters
    until the next ``zero_grad``). They are unscaled by then: ``GradScaler.step`` unscales them in
    place, and the fused Adam/AdamW kernels write the unscaled values back too. Under DDP they are
    already averaged over ranks, so every rank gets the global norm. With ``grad_clip`` set the
    trainer logs ``clip_grad_norm_``'s value instead, the same quantity (the norm before clipping).
    """
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return None
    return torch.nn.utils.get_total_norm(grads, norm_type=2.0)
