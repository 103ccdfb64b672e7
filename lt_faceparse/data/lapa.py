"""LaPa read from the tree as distributed.

```
ROOT/{train,val,test}/images/{name}.jpg      variable size
ROOT/{train,val,test}/labels/{name}.png      single channel, ids 0..10 (taxonomy "lapa")
ROOT/{train,val,test}/landmarks/{name}.txt   "106", then 106 lines "x y"
```
Training augmentation as released with SegFace: an always-on random affine transform (rotation
U(-30, 30) degrees, scale U(0.5, 3), translation U(-20, 20) px about the image centre; bicubic
image, nearest label, fill 0), applied to the landmarks alike. The RoI tanh-warp that follows it
lives in :mod:`lt_faceparse.data.warp` (models use it through ``TanhWarp``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lt_faceparse.data.base import (IMAGE_SUFFIXES, FaceParsingDataset, check_label_ids, read_id_png, read_rgb,
                                    warn_labels_without_image)
from lt_faceparse.errors import DataError, SplitNotFound
from lt_faceparse.taxonomy import get_taxonomy

SPLITS = ("train", "val", "test")
PUBLISHED_SPLIT_SIZES = {"train": 18176, "val": 2000, "test": 2000}
NUM_LANDMARKS = 106

# Released augmentation ranges.
ROTATION_DEG = (-30.0, 30.0)
SCALE = (0.5, 3.0)
TRANSLATION_PX = (-20.0, 20.0)


def read_landmarks_106(path: str | Path) -> np.ndarray:
    """106 x 2 float32 (x, y) from a LaPa landmark file ("106" header then 106 "x y" lines)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "landmark file not found")
    rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    if not rows or len(rows[0]) != 1 or not rows[0][0].isdigit():
        raise DataError(path, "expected the point count ('106') on the first line")
    count = int(rows[0][0])
    if count != NUM_LANDMARKS or len(rows) - 1 != count:
        raise DataError(path, f"expected {NUM_LANDMARKS} points, header says {count} and the file has {len(rows) - 1}")
    try:
        pts = np.array([[float(r[0]), float(r[1])] for r in rows[1:]], dtype=np.float32)
    except (ValueError, IndexError):
        raise DataError(path, "every point line must hold two numbers 'x y'") from None
    if not np.isfinite(pts).all():
        raise DataError(path, "non-finite landmark coordinates")
    return pts


def affine_matrix(angle_deg: float, scale: float, translate: tuple[float, float],
                  center: tuple[float, float]) -> np.ndarray:
    """2 x 3 matrix of p' = s R(angle) (p - c) + c + t in continuous pixel coordinates."""
    a = math.radians(angle_deg)
    rs = scale * np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    c = np.asarray(center, dtype=np.float64)
    return np.concatenate([rs, (c + np.asarray(translate) - rs @ c)[:, None]], axis=1)


def apply_affine(image: np.ndarray, label: np.ndarray | None, landmarks: np.ndarray | None, matrix: np.ndarray):
    """Warp image (bicubic), label (nearest) and landmarks with a forward 2 x 3 ``matrix`` acting on
    continuous pixel coordinates (pixel i spans [i, i+1)); uncovered pixels get 0."""
    full = np.vstack([matrix, [0.0, 0.0, 1.0]])
    inv = np.linalg.inv(full)[:2].reshape(-1)  # PIL maps output -> input
    h, w = image.shape[:2]
    out_img = np.asarray(Image.fromarray(image).transform((w, h), Image.AFFINE, tuple(inv), Image.BICUBIC, fillcolor=0))
    out_lab = None
    if label is not None:
        lh, lw = label.shape
        sx, sy = lw / w, lh / h  # the label may be stored at another resolution of the same frame
        scale = np.diag([sx, sy, 1.0])
        lab_inv = (scale @ np.linalg.inv(full) @ np.linalg.inv(scale))[:2].reshape(-1)
        out_lab = np.asarray(Image.fromarray(label).transform((lw, lh), Image.AFFINE, tuple(lab_inv), Image.NEAREST,
                                                              fillcolor=0))
    out_lm = None
    if landmarks is not None:
        pts = landmarks.astype(np.float64) + 0.5  # pixel centres -> continuous coordinates
        out_lm = (pts @ matrix[:, :2].T + matrix[:, 2] - 0.5).astype(np.float32)
    return out_img, out_lab, out_lm


def random_affine(image: np.ndarray, label: np.ndarray | None, landmarks: np.ndarray | None,
                  generator: torch.Generator | None = None):
    """The released LaPa training augmentation (ranges above), drawn from torch's generator."""
    u = torch.rand(4, generator=generator).double().tolist()
    angle = ROTATION_DEG[0] + (ROTATION_DEG[1] - ROTATION_DEG[0]) * u[0]
    scale = SCALE[0] + (SCALE[1] - SCALE[0]) * u[1]
    tx = TRANSLATION_PX[0] + (TRANSLATION_PX[1] - TRANSLATION_PX[0]) * u[2]
    ty = TRANSLATION_PX[0] + (TRANSLATION_PX[1] - TRANSLATION_PX[0]) * u[3]
    h, w = image.shape[:2]
    return apply_affine(image, label, landmarks, affine_matrix(angle, scale, (tx, ty), (w / 2, h / 2)))


def list_split(root: str | Path, split: str) -> dict[str, Path]:
    """name -> image path of one split, sorted by name."""
    folder = Path(root) / split / "images"
    if Path(root).is_dir() and not (Path(root) / split).exists():
        raise SplitNotFound(Path(root) / split, f"this LaPa tree has no {split} split")
    if not folder.is_dir():
        raise DataError(folder, f"LaPa {split} image folder not found")
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}


class LaPa(FaceParsingDataset):
    """LaPa split (``train``, ``val`` or ``test``); samples carry the 106 landmarks."""

    dataset_name = "lapa"

    def __init__(self, root: str | Path, split: str = "train", **kwargs):
        if split not in SPLITS:
            raise ValueError(f"unknown LaPa split {split!r}; use one of {SPLITS}")
        if kwargs.get("flip") and kwargs.get("landmark_mirror") is None:
            raise ValueError("flipping LaPa samples needs a mirror permutation of its 106-point layout "
                             "(landmark_mirror=...); the released recipe does not flip")
        root = Path(root)
        self._image_paths = list_split(root, split)
        warn_labels_without_image(root / split / "labels", self._image_paths)
        super().__init__(root, split, get_taxonomy("lapa"), sorted(self._image_paths), **kwargs)

    def image_path(self, index: int) -> Path:
        return self._image_paths[self.names[index]]

    def label_path(self, index: int) -> Path:
        return self.root / self.split / "labels" / f"{self.names[index]}.png"

    def landmark_path(self, index: int) -> Path:
        return self.root / self.split / "landmarks" / f"{self.names[index]}.txt"

    def describe_item(self, index: int) -> str:
        return str(self.image_path(index))

    def read_image(self, index: int) -> np.ndarray:
        return read_rgb(self.image_path(index))

    def read_label(self, index: int) -> np.ndarray:
        path = self.label_path(index)
        label = read_id_png(path)
        check_label_ids(label, self.taxonomy.num_classes, path)
        return label

    def read_landmarks(self, index: int) -> np.ndarray:
        return read_landmarks_106(self.landmark_path(index))

    def augment(self, image, label, landmarks):
        return random_affine(image, label, landmarks)

