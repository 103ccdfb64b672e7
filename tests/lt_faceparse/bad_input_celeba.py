"""A tiny CelebAMask-HQ tree for the bad-input catalogue, made by the data tests' own builder."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("data_conftest_builders", Path(__file__).parent / "data" / "conftest.py")
_builders = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_builders)


def celeba_tree(root: Path, n: int) -> Path:
    """``n`` images (HQ indices 0..n-1, all in CelebA's test range), every one with the hand-made masks."""
    return _builders.make_celeba_tree(root, {i: 182638 + i for i in range(n)})
