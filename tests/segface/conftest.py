"""SegFace tests run single-threaded (tests/conftest.py: one_torch_thread)."""

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Every test of this folder runs on one torch thread (tests/conftest.py)."""
