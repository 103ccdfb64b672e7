"""Long-tail tests: a small SynthFace-LT set (CelebAMask-HQ layout) shared by the session, one
torch thread each (the CI box has 2 cores shared by several test processes), and the engine's
test helpers importable as ``engine_testdata``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "engine"))

SYNTH = dict(num_images=40, size=32, seed=5, splits=(0.6, 0.2, 0.2))


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Every test of this folder runs on one torch thread (tests/conftest.py)."""


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory) -> Path:
    """40 SynthFace-LT faces at 32 px (24 train / 8 val / 8 test), generated once per session."""
    from lt_faceparse.data.synthetic import ensure_synthface

    return ensure_synthface(tmp_path_factory.mktemp("longtail_synth"), num_workers=0, **SYNTH)
