"""Shared fixtures of the data-layer tests: tiny hand-made trees and tiny SynthFace-LT sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lt_faceparse.data.synthetic import generate_synthface

SYNTH_N = 10
SYNTH_SIZE = 64
SYNTH_SEED = 7


def write_png(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path


def write_jpg(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path, quality=95)
    return path


def _mask(cells, hw=(4, 4)) -> np.ndarray:
    m = np.zeros(hw, dtype=np.uint8)
    for r, c in cells:
        m[r, c] = 255
    return m


ALL = [(r, c) for r in range(4) for c in range(4)]

# Hand-made overlapping part masks of one 4 x 4 image (see test_data_merge.py for the expected maps).
HAND_MASKS = {
    "skin": ALL,
    "hair": [(0, 0), (0, 1), (0, 2), (0, 3), (3, 3)],
    "hat": [(0, 0)],
    "ear_r": [(0, 3)],
    "l_ear": [(0, 3), (1, 3)],
    "eye_g": [(1, 0), (1, 1)],
    "l_eye": [(1, 1), (1, 2)],
    "nose": [(2, 0), (2, 1)],
    "mouth": [(2, 2)],
    "u_lip": [(2, 2), (2, 3)],
    "l_lip": [(2, 3)],
    "neck": [(3, 0), (3, 1), (3, 2), (3, 3)],
    "neck_l": [(3, 1), (3, 2)],
    "cloth": [(3, 2), (3, 3)],
}


def make_celeba_tree(root: Path, numbers: dict[int, int], *, partition: dict[int, int] | None = None,
                     masks: dict[int, dict[str, np.ndarray]] | None = None, image_side: int = 8) -> Path:
    """A CelebAMask-HQ tree: ``numbers`` maps HQ index -> CelebA file number; every image gets the
    hand masks unless ``masks`` says otherwise. Images are twice the mask size (like 1024/512)."""
    rng = np.random.default_rng(0)
    lines = ["idx orig_idx orig_file"]
    for idx, num in numbers.items():
        lines.append(f"{idx} {num - 1} {num:06d}.jpg")
        pixels = rng.integers(0, 255, (image_side, image_side, 3), dtype=np.uint8)
        write_jpg(root / "CelebA-HQ-img" / f"{idx}.jpg", pixels)
        parts = masks.get(idx) if masks is not None and idx in masks else {k: _mask(v) for k, v in HAND_MASKS.items()}
        for part, m in parts.items():
            write_png(root / "CelebAMask-HQ-mask-anno" / str(idx // 2000) / f"{idx:05d}_{part}.png", m)
    (root / "CelebA-HQ-to-CelebA-mapping.txt").write_text("\n".join(lines) + "\n")
    if partition is not None:
        rows = "".join(f"{n:06d}.jpg {c}\n" for n, c in sorted(partition.items()))
        (root / "list_eval_partition.txt").write_text(rows)
    return root


@pytest.fixture(scope="session")
def synth_sets(tmp_path_factory) -> dict[str, Path]:
    """One tiny SynthFace-LT set per format (10 images, 64 px, seed 7), generated once per session;
    the CelebAMask-HQ images are twice the mask size, like the real tree's."""
    base = tmp_path_factory.mktemp("synth")
    return {fmt: generate_synthface(base / fmt, fmt=fmt, num_images=SYNTH_N, size=SYNTH_SIZE, seed=SYNTH_SEED,
                                    num_workers=0, image_scale=2 if fmt == "celebamask-hq" else 1)
            for fmt in ("celebamask-hq", "lapa", "helen", "folder")}
