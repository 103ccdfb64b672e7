"""Test data of the zoo tests: release-format ``model_299.pt`` files (the layout the convert-official
tests rebuild from the facts file, ``tests/segface/test_segface_convert.py``), face-parsing.PyTorch
state dicts (``tests/baselines/zll_reference.py``) and a Hugging Face cache laid out as
``huggingface_hub`` lays it out (``refs/main``, ``snapshots/<commit>/<file>`` -> ``blobs/<hash>``)."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import torch

TESTS = Path(__file__).resolve().parents[2]
for _folder in ("segface", "baselines"):
    if str(TESTS / _folder) not in sys.path:
        sys.path.insert(0, str(TESTS / _folder))

from test_segface_convert import ReleaseLayout, save_release  # noqa: E402
from zll_reference import random_zll_state_dict  # noqa: E402

from segface.convert import RELEASE_TOKEN_NAMES  # noqa: E402

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def write_release_mobilenet(path: Path, *, seed: int = 0, taxonomy: str = "celebamask-hq") -> Path:
    """A release-format ``model_299.pt`` of a MobileNetV3 SegFace with random weights (``seed``)."""
    torch.manual_seed(seed)
    release = ReleaseLayout("mobilenet", RELEASE_TOKEN_NAMES[taxonomy]).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_release(release, path)
    return path


def write_zll_checkpoint(path: Path, *, seed: int = 1) -> Path:
    """A face-parsing.PyTorch ``79999_iter.pth`` (plain BiSeNet state dict) with random weights."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(random_zll_state_dict(19, seed=seed), path)
    return path


def put_in_hf_cache(cache: Path, repo: str, filename: str, source: Path) -> Path:
    """Place ``source`` in the Hugging Face cache ``cache`` as ``repo``'s ``filename`` at revision main;
    returns the snapshot path (a symlink to the blob, as huggingface_hub writes it)."""
    repo_dir = cache / f"models--{repo.replace('/', '--')}"
    data = source.read_bytes()
    blob = repo_dir / "blobs" / hashlib.sha256(data).hexdigest()
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    snapshot = repo_dir / "snapshots" / COMMIT / filename
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    if not snapshot.exists():
        snapshot.symlink_to(os.path.relpath(blob, snapshot.parent))
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(COMMIT)
    return snapshot
