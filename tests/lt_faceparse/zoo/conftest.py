"""Zoo tests: one torch thread; a Hugging Face cache of their own, offline unless a test lifts it."""

from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Every test of this folder runs on one torch thread (tests/conftest.py)."""


@pytest.fixture
def hf_cache(tmp_path, monkeypatch) -> Path:
    """An empty Hugging Face hub cache in use (``huggingface_hub.constants.HF_HUB_CACHE``), and an
    empty zoo home for user-supplied files."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("LT_FACEPARSE_ZOO", str(tmp_path / "zoo-home"))
    return cache
