"""Suite-wide settings: no test reaches the network; ``one_torch_thread`` for the folders and modules
that run models (the CI box has 2 cores, shared with the worker processes some tests start, and
oversubscription costs more than it gains)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Pretrained-weight lookups run in offline mode (a missing file fails fast with the clear error
    instead of downloading); the download tests lift it and mock the downloader."""
    monkeypatch.setenv("LT_FACEPARSE_OFFLINE", "1")


@pytest.fixture(scope="module")
def one_torch_thread():
    """torch runs on one thread for the module, then the previous count is restored."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
