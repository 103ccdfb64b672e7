"""Engine tests: helpers importable as ``engine_testdata`` (any pytest import mode), one thread each
(the CI box has 2 cores shared by several test processes)."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
