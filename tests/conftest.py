"""Suite-wide settings: no test reaches the network."""

import pytest


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    """Pretrained-weight lookups run in offline mode (a missing file fails fast with the clear error
    instead of downloading); the download tests lift it and mock the downloader."""
    monkeypatch.setenv("LT_FACEPARSE_OFFLINE", "1")
