"""The model registry: names -> constructors, imported lazily.

The core never imports a model module at import time; ``build_model("segface", ...)`` imports
``segface`` only when asked. Every registered model maps B x 3 x H x W (ImageNet-normalised)
images to B x K x H x W logits and exposes ``loss(logits, target) -> Tensor``.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable

import torch.nn as nn

_REGISTRY: dict[str, str | Callable[..., nn.Module]] = {
    "segface": "segface.model:SegFace",
    "bisenet": "baselines.bisenet:BiSeNet",
    "fcn": "baselines.fcn:FCN",
    "segformer": "baselines.segformer_head:SegFormerHead",
    # a few-thousand-parameter LayerNorm-only parser for tests and CPU smoke configs
    "tiny": "lt_faceparse.engine.tiny:TinyParser",
}


def register_model(name: str, target: str | Callable[..., nn.Module], *, overwrite: bool = False) -> None:
    """Register ``"module.path:Callable"`` (imported on first use) or a callable under ``name``."""
    if name in _REGISTRY and not overwrite and _REGISTRY[name] is not target:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = target


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def resolve_model(name: str) -> Callable[..., nn.Module]:
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; registered: {list_models()}") from None
    if callable(target):
        return target
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model by name with keyword arguments (e.g. ``num_classes``, ``backbone``)."""
    return resolve_model(name)(**kwargs)
