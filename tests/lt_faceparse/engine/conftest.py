"""Engine tests: helpers importable as ``engine_testdata`` (any pytest import mode), one thread each
(the CI box has 2 cores shared by several test processes)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Every test of this folder runs on one torch thread (tests/conftest.py)."""
