"""Stamps that tell when a tensor derived from parameters or buffers must be recomputed."""

from __future__ import annotations

import torch


def tensor_stamp(t: torch.Tensor) -> tuple:
    """Identity of ``t``'s current values: storage, device, dtype and in-place version counter.

    Inference tensors keep no version counter; they cannot be changed outside inference mode, so
    their storage identifies them.
    """
    version = -1 if t.is_inference() else t._version
    return (t.data_ptr(), version, t.device, t.dtype, tuple(t.shape))
