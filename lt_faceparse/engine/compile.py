"""``torch.compile`` for training and inference: which mode when, and eager execution when compiling fails.

Settings (the training config's top-level ``compile`` key, ``FaceParser(compile=...)``,
``lt-faceparse parse --compile``):

- ``false``: eager PyTorch;
- ``true``: compile in the mode chosen for the job (:func:`default_mode`);
- a mode name (``"default"``, ``"reduce-overhead"``, ``"max-autotune"``, ``"max-autotune-no-cudagraphs"``);
- ``"auto"`` (the training default): compile on CUDA, stay eager elsewhere.

Why these choices. Training: ``"default"`` (Inductor's fused kernels, no CUDA graphs). A
training step of SegFace at 512 px is dominated by convolutions and matrix products (cuDNN / cuBLAS
either way) plus the element-wise passes between them, which Inductor fuses; CUDA graphs save
little at that size and pin a private memory pool per shape, and the max-autotune modes spend
minutes benchmarking GEMM templates at start-up. ``"auto"`` compiles only on CUDA: on a CPU, a run
of this project's size (minutes of SynthFace-LT) would spend much of its time in the C++ compiler
(tens of seconds per model and grad mode). Inference: ``"reduce-overhead"`` on CUDA, because a
batch-1 pass is bound by kernel launches (SegFace Swin-B: 20 ms at 64 px, 22 ms at 512 px on an
H200), which CUDA graphs remove; ``"default"`` on the CPU (CUDA graphs do not apply there).

Compilation happens at the first call (and again for a new input shape or grad mode). If it fails
(a :class:`torch._dynamo.exc.TorchDynamoException`, which covers backend and Inductor failures),
:class:`CompiledOrEager` warns once, naming the error, and runs the module eagerly from then on,
so a long run never dies for want of a compiler. The backward graph is compiled together with the
forward (not lazily at the first backward), so its failures are caught at the same place.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import torch
import torch.nn as nn

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
SETTINGS = (False, True, "auto", *MODES)


def check_compile_setting(value: Any) -> bool | str:
    """``value`` if it is a valid ``compile`` setting, else a ValueError listing them."""
    if value not in SETTINGS or (value is not True and value is not False and not isinstance(value, str)):
        raise ValueError(f"compile must be one of {list(SETTINGS)}, got {value!r}")
    return value


def default_mode(device: torch.device, training: bool) -> str:
    """The mode ``compile: true`` means: see the module docstring for why."""
    if device.type == "cuda" and not training:
        return "reduce-overhead"
    return "default"


def resolve_compile(setting: bool | str, device: torch.device, *, training: bool) -> str | None:
    """The torch.compile mode for ``setting`` on ``device``, or None to stay eager."""
    check_compile_setting(setting)
    if setting is False or (setting == "auto" and device.type != "cuda"):
        return None
    if setting is True or setting == "auto":
        return default_mode(device, training)
    return setting


class CompiledOrEager(nn.Module):
    """``module`` run through ``torch.compile(module, mode=mode)``, or eagerly once compiling has failed.

    Holds ``module`` (its parameters, state-dict keys and attributes stay reachable as
    ``.module``); ``mode`` None runs it eagerly from the start. ``compiled`` tells whether the
    compiled path is still in use.
    """

    def __init__(self, module: nn.Module, mode: str | None):
        super().__init__()
        self.module = module
        self.mode = mode
        # not a submodule: the compiled wrapper shares ``module``'s parameters
        self.__dict__["_compiled"] = None if mode is None else torch.compile(module, mode=mode)

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self._compiled is not None:
            try:
                with _backward_compiled_with_forward():
                    return self._compiled(*args, **kwargs)
            except torch._dynamo.exc.TorchDynamoException as err:
                cause = getattr(err, "inner_exception", None) or err.__cause__ or err
                warnings.warn(f"torch.compile (mode {self.mode!r}) failed for {type(self.module).__name__}; "
                              f"running eagerly from now on. {type(err).__name__}: {type(cause).__name__}: "
                              f"{str(cause).strip().splitlines()[0] if str(cause).strip() else ''}",
                              RuntimeWarning, stacklevel=2)
                self.__dict__["_compiled"] = None
        return self.module(*args, **kwargs)


def _backward_compiled_with_forward() -> contextlib.AbstractContextManager:
    """AOTAutograd compiles the backward graph at the forward's compilation (where torch has the switch;
    older versions compile it lazily, and a backward failure then surfaces at ``backward()``)."""
    config = torch._functorch.config
    if hasattr(config, "force_non_lazy_backward_lowering"):
        return config.patch(force_non_lazy_backward_lowering=True)
    return contextlib.nullcontext()
