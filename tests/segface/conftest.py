"""SegFace tests run single-threaded: the CI box is small and shared, and oversubscription costs more than it gains."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
