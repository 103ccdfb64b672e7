"""lt_faceparse.data: dataset loaders (real trees and SynthFace-LT), transforms, warps, checks.

Public entry points: :func:`build_dataset`, :func:`iter_labels`, :func:`make_loader`,
:class:`FaceParsingDataset`, :class:`Sample`, :class:`Batch`.

They are imported on first use (PEP 562), so that the torch-free modules of this package (the
CelebAMask-HQ layout and the class-frequency pass) load without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "DATASETS": "lt_faceparse.data.build",
    "Batch": "lt_faceparse.data.sample",
    "FaceParsingDataset": "lt_faceparse.data.base",
    "Sample": "lt_faceparse.data.sample",
    "build_dataset": "lt_faceparse.data.build",
    "collate_samples": "lt_faceparse.data.sample",
    "dataset_class": "lt_faceparse.data.build",
    "iter_labels": "lt_faceparse.data.build",
    "make_loader": "lt_faceparse.data.build",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
