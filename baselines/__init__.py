"""Baselines SegFace is compared with: BiSeNet (face-parsing.PyTorch), FCN, SegFormer-style MLP head.

All follow the model interface of :mod:`lt_faceparse.models` (registered as ``"bisenet"``,
``"fcn"``, ``"segformer"``). ``FCN`` and ``SegFormerHead`` are imported on first use, so ``import
baselines`` does not pull in the SegFace backbones (torchvision, timm) until they are asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

# Bound eagerly: the function shadows its submodule's name, so ``baselines.convert_zll(src)`` works
# (``from baselines.convert_zll import ...`` still reaches the module).
from baselines.bisenet import BiSeNet
from baselines.convert_zll import convert_zll, export_zll
from baselines.ohem import OhemCrossEntropy, ohem_cross_entropy

_LAZY = {"FCN": "baselines.fcn", "SegFormerHead": "baselines.segformer_head"}

__all__ = ["BiSeNet", "FCN", "OhemCrossEntropy", "SegFormerHead", "convert_zll", "export_zll", "ohem_cross_entropy"]


def __getattr__(name: str) -> Any:
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'baselines' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), name)
