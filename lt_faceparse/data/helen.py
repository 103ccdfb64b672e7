"""Helen (the relabeled version used by SegFace) read from the tree as distributed.

```
ROOT/train/{name}_image.jpg, {name}_label.png, {name}_viz.jpg
ROOT/test/{name}_image.jpg,  {name}_label.png, {name}_viz.jpg
ROOT/landmarks.txt           one line per image: 136 numbers (68 points, x y interleaved) then the name
ROOT/val.txt                 optional: names of the validation images (one per line)
```
Labels: single-channel ids 0..10 (taxonomy ``helen``). The landmark file's coordinates are twice
the image's pixel coordinates: they are multiplied by 0.5 on reading (as the released code does).

Every example is the square crop of 1.2 x its landmark bounding box (centred on the box, clipped
to the image), as released; :meth:`Helen.read_image` / :meth:`Helen.read_label` return that crop at
its original pixel resolution, so ``orig_size`` and ``native`` scoring refer to the crop
(``read_full_image`` / ``read_full_label`` give the uncropped files).

Splits: ``train`` = ``train/`` and ``test`` = ``test/``, minus any names in ``val.txt``. ``val`` =
the names in ``val.txt`` (looked up in ``train/`` then ``test/``) when that file exists; otherwise
``val`` is the test set, as in the released code (the paper's 230-image validation set is not part
of the distributed tree).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
from PIL import Image

from lt_faceparse.data.base import FaceParsingDataset, check_label_ids, read_id_png, read_rgb
from lt_faceparse.errors import DataError
from lt_faceparse.taxonomy import get_taxonomy

SPLITS = ("train", "val", "test")
PUBLISHED_SPLIT_SIZES = {"train": 2000, "val": 230, "test": 100}
LANDMARK_FILE = "landmarks.txt"
VAL_LIST = "val.txt"
LANDMARK_SCALE = 0.5
CROP_FACTOR = 1.2
NUM_LANDMARKS = 68


def read_landmark_file(path: str | Path) -> dict[str, np.ndarray]:
    """name -> 68 x 2 float32 pixel coordinates (file values x 0.5)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "landmark file not found")
    out: dict[str, np.ndarray] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        tokens = [t for t in re.split(r"[\s,]+", line.strip()) if t]
        if not tokens:
            continue
        name, values = tokens[-1], tokens[:-1]
        if len(values) != 2 * NUM_LANDMARKS:
            raise DataError(path, f"line {lineno}: expected {2 * NUM_LANDMARKS} numbers then the name, "
                                  f"got {len(values)} numbers")
        try:
            pts = np.array(values, dtype=np.float64).reshape(NUM_LANDMARKS, 2) * LANDMARK_SCALE
        except ValueError:
            raise DataError(path, f"line {lineno}: non-numeric landmark value") from None
        out[Path(name).stem.removesuffix("_image")] = pts.astype(np.float32)
    return out


def crop_box(landmarks: np.ndarray, image_hw: tuple[int, int],
             factor: float = CROP_FACTOR) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the square ``factor`` x landmark-bbox crop, clipped to the image.

    The square's side is ``factor`` times the longer side of the landmark bounding box, centred on
    the box; the pixel box covers every pixel the square touches.
    """
    x0, y0 = landmarks.min(axis=0)
    x1, y1 = landmarks.max(axis=0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = factor * max(x1 - x0, y1 - y0) / 2
    h, w = image_hw
    left = max(0, math.floor(cx - half + 0.5))
    top = max(0, math.floor(cy - half + 0.5))
    right = min(w, math.ceil(cx + half + 0.5))
    bottom = min(h, math.ceil(cy + half + 0.5))
    if right <= left or bottom <= top:
        raise ValueError(f"landmark crop {(left, top, right, bottom)} is empty for an image of {w}x{h}")
    return left, top, right, bottom


def _names_in(folder: Path) -> list[str]:
    if not folder.is_dir():
        raise DataError(folder, "Helen folder not found")
    return sorted(p.name[: -len("_image.jpg")] for p in folder.glob("*_image.jpg"))


def helen_splits(root: str | Path) -> dict[str, list[tuple[str, str]]]:
    """split -> [(folder, name)] following the rules in the module docstring."""
    root = Path(root)
    train, test = _names_in(root / "train"), _names_in(root / "test")
    val_path = root / VAL_LIST
    if not val_path.is_file():
        return {"train": [("train", n) for n in train], "val": [("test", n) for n in test],
                "test": [("test", n) for n in test]}
    val_names = [line.strip() for line in val_path.read_text().splitlines() if line.strip()]
    where = {n: "test" for n in test} | {n: "train" for n in train}
    missing = [n for n in val_names if n not in where]
    if missing:
        raise DataError(val_path, f"{len(missing)} validation names have no image, e.g. {missing[:3]}")
    vset = set(val_names)
    return {"train": [("train", n) for n in train if n not in vset],
            "val": [(where[n], n) for n in sorted(vset)],
            "test": [("test", n) for n in test if n not in vset]}


class Helen(FaceParsingDataset):
    """Helen split; examples are the 1.2 x landmark crops, samples carry the 68 landmarks."""

    dataset_name = "helen"

    def __init__(self, root: str | Path, split: str = "train", **kwargs):
        if split not in SPLITS:
            raise ValueError(f"unknown Helen split {split!r}; use one of {SPLITS}")
        root = Path(root)
        self._items = helen_splits(root)[split]
        self._landmarks = read_landmark_file(root / LANDMARK_FILE)
        super().__init__(root, split, get_taxonomy("helen"), [n for _, n in self._items], **kwargs)

    def image_path(self, index: int) -> Path:
        folder, name = self._items[index]
        return self.root / folder / f"{name}_image.jpg"

    def label_path(self, index: int) -> Path:
        folder, name = self._items[index]
        return self.root / folder / f"{name}_label.png"

    def describe_item(self, index: int) -> str:
        return str(self.image_path(index))

    def full_landmarks(self, index: int) -> np.ndarray:
        name = self.names[index]
        if name not in self._landmarks:
            raise DataError(self.root / LANDMARK_FILE, f"no landmarks for image {name!r}")
        return self._landmarks[name]

    def read_full_image(self, index: int) -> np.ndarray:
        return read_rgb(self.image_path(index))

    def read_full_label(self, index: int) -> np.ndarray:
        path = self.label_path(index)
        label = read_id_png(path)
        check_label_ids(label, self.taxonomy.num_classes, path)
        return label

    def crop(self, index: int, image_hw: tuple[int, int]) -> tuple[int, int, int, int]:
        try:
            return crop_box(self.full_landmarks(index), image_hw)
        except ValueError as err:
            raise DataError(self.root / LANDMARK_FILE, f"{self.names[index]}: {err}") from None

    def read_image(self, index: int) -> np.ndarray:
        image = self.read_full_image(index)
        left, top, right, bottom = self.crop(index, image.shape[:2])
        return image[top:bottom, left:right]

    def read_label(self, index: int) -> np.ndarray:
        label = self.read_full_label(index)
        left, top, right, bottom = self.crop(index, label.shape[:2])
        return label[top:bottom, left:right]

    def read_landmarks(self, index: int) -> np.ndarray:
        image_hw = self._image_hw(index)
        left, top, _, _ = self.crop(index, image_hw)
        return self.full_landmarks(index) - np.array([left, top], dtype=np.float32)

    def load(self, index: int):
        image = self.read_full_image(index)
        label = self.read_full_label(index)
        if label.shape != image.shape[:2]:
            raise DataError(self.label_path(index), f"label size {label.shape[1]}x{label.shape[0]} differs from "
                                                    f"the image's {image.shape[1]}x{image.shape[0]}")
        left, top, right, bottom = self.crop(index, image.shape[:2])
        landmarks = self.full_landmarks(index) - np.array([left, top], dtype=np.float32)
        return image[top:bottom, left:right], label[top:bottom, left:right], landmarks

    def _image_hw(self, index: int) -> tuple[int, int]:
        with Image.open(self.image_path(index)) as img:
            return img.height, img.width
