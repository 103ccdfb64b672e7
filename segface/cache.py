"""Tensors derived from parameters and buffers, cached for inference and recomputed when a source changes."""

from __future__ import annotations

from typing import Any, Callable, Hashable, Sequence

import torch


def tensor_stamp(t: torch.Tensor) -> tuple:
    """Identity of ``t``'s current values: storage, device, dtype and in-place version counter.

    Inference tensors keep no version counter; they cannot be changed outside inference mode, so
    their storage identifies them.
    """
    version = -1 if t.is_inference() else t._version
    return (t.data_ptr(), version, t.device, t.dtype, tuple(t.shape))


def caching_allowed(sources: Sequence[torch.Tensor]) -> bool:
    """False while gradients flow to a source, and while tracing, exporting or compiling (a cached
    tensor would be baked in or cut the graph)."""
    if torch.is_grad_enabled() and any(s.requires_grad for s in sources):
        return False
    return not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling())


def autocast_state(sources: Sequence[torch.Tensor]) -> tuple[bool, torch.dtype | None]:
    """(enabled, dtype) of autocast for the device type of ``sources`` (dtype None when off)."""
    device_type = sources[0].device.type if sources else "cpu"
    if not torch.is_autocast_enabled(device_type):
        return False, None
    return True, torch.get_autocast_dtype(device_type)


class DerivedCache:
    """A few tensors computed from ``sources``, kept while none of them changes.

    ``get(key, sources, compute)`` returns ``compute()``, computed without gradient and cached under
    ``key`` plus the sources' stamps (:func:`tensor_stamp`), the inference-mode flag and the autocast
    state of the sources' device (a product computed under bf16 autocast is a bf16 tensor); the
    sources are held, so their storage cannot be reused by another tensor while an entry refers to
    it. Where caching is not allowed (:func:`caching_allowed`) it just returns ``compute()``.
    """

    def __init__(self, max_entries: int = 8):
        self.max_entries = max_entries
        self._entries: dict[tuple, tuple[Sequence[torch.Tensor], Any]] = {}

    def get(self, key: Hashable, sources: Sequence[torch.Tensor], compute: Callable[[], Any]) -> Any:
        if not caching_allowed(sources):
            return compute()
        full_key = (key, *map(tensor_stamp, sources), torch.is_inference_mode_enabled(), autocast_state(sources))
        entry = self._entries.get(full_key)
        if entry is None:
            with torch.no_grad():
                value = compute()
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            entry = self._entries[full_key] = (tuple(sources), value)
        return entry[1]

    def clear(self) -> None:
        self._entries.clear()
