"""Helpers shared by the SegFace tests."""

from __future__ import annotations

import contextlib
from typing import Iterator

from segface import SegFace


@contextlib.contextmanager
def literal_formulation(*models: SegFace) -> Iterator[None]:
    """Run ``models`` in the paper's literal formulation inside the block, the fast path after it."""
    for model in models:
        model.literal = True
    try:
        yield
    finally:
        for model in models:
            model.literal = False
