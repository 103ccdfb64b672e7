"""Common machinery of every face-parsing dataset: raw reads, transforms, samples.

A dataset subclass only says how to list its images and read one image, label map and landmark
set in their *original* form (:meth:`read_image`, :meth:`read_label`, :meth:`read_landmarks`);
:class:`FaceParsingDataset` turns them into :class:`~lt_faceparse.data.sample.Sample` objects:
optional training augmentation, square resize or aspect-preserving pad, optional horizontal flip
with left/right swap, ImageNet normalisation.
"""

from __future__ import annotations

import warnings
from functools import cached_property
from pathlib import Path
from typing import ClassVar, Iterable

import numpy as np
import torch
from torch.utils.data import Dataset

from lt_faceparse.data import transforms as T
from lt_faceparse.data.files import open_image, source_dataset_of
from lt_faceparse.data.png_decode import png_pixels
from lt_faceparse.data.sample import Sample
from lt_faceparse.errors import DataError
from lt_faceparse.taxonomy import Taxonomy

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")  # the image files a dataset folder may hold
FLIP_MODES = (False, True, "always")


JPEG_SUFFIXES = (".jpg", ".jpeg")
JPEG_END = b"\xff\xd9"


def read_rgb(path: str | Path) -> np.ndarray:
    """H x W x 3 uint8 RGB pixels of an image file.

    JPEG files that end with their end-of-image marker are decoded by ``torchvision.io.decode_jpeg``
    (libjpeg-turbo, as Pillow; the same pixels, measured about 40% faster, without Pillow's copy
    into numpy). Everything else, and any JPEG that decoder refuses, goes through Pillow, which
    reports unreadable and truncated files.
    """
    path = Path(path)
    if path.suffix.lower() in JPEG_SUFFIXES:
        image = _decode_jpeg(path)
        if image is not None:
            return image
    img = open_image(path)
    return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))


def _decode_jpeg(path: Path) -> np.ndarray | None:
    """H x W x 3 RGB of a complete JPEG file via torchvision, or None to leave it to Pillow."""
    from torchvision.io import ImageReadMode, decode_jpeg  # lazy: torchvision (~0.5 s) only to decode JPEGs

    try:
        data = path.read_bytes()
    except OSError:
        return None  # Pillow's path names the file and the problem
    if not data.endswith(JPEG_END):
        return None  # truncated (or trailing bytes): libjpeg would only warn and fill the rest with grey
    try:
        pixels = decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
    except RuntimeError:  # libjpeg's errors (corrupt data): Pillow decides and names the file
        return None
    return pixels.permute(1, 2, 0).contiguous().numpy()  # H x W x 3, as Pillow gives it


def read_id_png(path: str | Path) -> np.ndarray:
    """H x W uint8 class ids from a label PNG: single-channel values or a palette PNG's indices."""
    plain = png_pixels(path)  # a plain 8-bit PNG, decoded without Image.open
    if plain is not None and plain[0] in ("L", "P"):
        return plain[1]
    img = open_image(path)
    if img.mode in ("L", "P"):
        return np.asarray(img, dtype=np.uint8)
    if img.mode in ("I", "I;16", "I;16B", "I;16L"):
        arr = np.asarray(img)
        if arr.max(initial=0) > 255:
            raise DataError(path, f"label ids up to {int(arr.max())} do not fit 0..255")
        return arr.astype(np.uint8)
    if img.mode in ("RGB", "RGBA"):
        arr = np.asarray(img)[..., :3]
        if (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all():
            return np.ascontiguousarray(arr[..., 0])
    raise DataError(path, f"label PNG has mode {img.mode!r}; expected single-channel ids or a palette PNG")


def check_label_ids(label: np.ndarray, num_classes: int, path: str | Path) -> None:
    """Raise :class:`DataError` when ``label`` holds ids outside 0..K-1 (255 = ignore is allowed)."""
    if label.size and int(label.max()) >= num_classes:
        bad = np.unique(label[(label >= num_classes) & (label != 255)])
        if bad.size:
            raise DataError(path, f"label ids {bad.tolist()} outside the taxonomy's 0..{num_classes - 1}")


def warn_labels_without_image(label_dir: Path, names: Iterable[str]) -> None:
    """Warn, with their count, about the label PNGs of ``label_dir`` whose image is missing: the
    dataset leaves them out (``check-dataset`` lists each)."""
    if not label_dir.is_dir():
        return
    listed = set(names)
    orphans = sorted(p.name for p in label_dir.glob("*.png") if p.stem not in listed)
    if orphans:
        warnings.warn(f"{label_dir}: {len(orphans)} label file(s) have no image and are left out (e.g. "
                      f"{orphans[0]}; check-dataset lists them)", stacklevel=3)


class FaceParsingDataset(Dataset):
    """Base class: a list of named images with label maps (and landmarks) in one split.

    Attributes: ``taxonomy``, ``dataset_name``, ``split``, ``root``, ``merge`` (preset name,
    ``"custom:..."`` or None), ``resolution`` (network side, None = original), ``names``.

    ``flip``: False, True (random horizontal flip with probability 0.5, for training) or
    ``"always"`` (every sample flipped, e.g. for test-time flipping). Random draws use torch's
    generator, which :func:`~lt_faceparse.data.make_loader` seeds per worker.
    """

    dataset_name: ClassVar[str] = ""
    # True: label and image must have the same size; False: the same frame at any resolution
    exact_label_size: ClassVar[bool] = True

    def __init__(
        self,
        root: str | Path,
        split: str,
        taxonomy: Taxonomy,
        names: list[str],
        *,
        resolution: int | None = 512,
        train: bool = False,
        flip: bool | str = False,
        resize_mode: str = "square",
        merge: str | None = None,
        landmark_mirror: np.ndarray | None = None,
    ):
        if resize_mode not in T.RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {T.RESIZE_MODES}, got {resize_mode!r}")
        if flip not in FLIP_MODES:
            raise ValueError(f"flip must be one of {FLIP_MODES}, got {flip!r}")
        if resolution is not None and int(resolution) <= 0:
            raise ValueError(f"resolution must be positive or None, got {resolution}")
        self.root = Path(root)
        self.split = split
        self.taxonomy = taxonomy
        self.names = list(names)
        self.resolution = None if resolution is None else int(resolution)
        self.train = bool(train)
        self.flip = flip
        self.resize_mode = resize_mode
        self.merge = merge
        self.landmark_mirror = landmark_mirror
        self._flip_lut = taxonomy.flip_lut()

    # ---- raw access (original frame, no transform) ----------------------------------------------
    def __len__(self) -> int:
        return len(self.names)

    def read_image(self, index: int) -> np.ndarray:
        """H x W x 3 uint8 RGB image as stored (original resolution)."""
        raise NotImplementedError

    def read_label(self, index: int) -> np.ndarray:
        """H x W uint8 label map in this dataset's taxonomy ids, original label resolution."""
        raise NotImplementedError

    def read_landmarks(self, index: int) -> np.ndarray | None:
        """N x 2 float32 (x, y) landmarks in the image's pixel frame, or None."""
        return None

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Image, label and landmarks of one example in the original frame."""
        return self.read_image(index), self.read_label(index), self.read_landmarks(index)

    def augment(self, image, label, landmarks):
        """Training-time augmentation in the original frame (identity unless a dataset overrides it)."""
        return image, label, landmarks

    # ---- samples --------------------------------------------------------------------------------
    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        image, label, landmarks = self.load(index)
        ref_hw = label.shape[:2] if label is not None else image.shape[:2]
        if label is not None and not (image.shape[:2] == label.shape[:2] if self.exact_label_size
                                      else T.check_aligned(image.shape[:2], label.shape[:2])):
            how = "differ" if self.exact_label_size else "do not cover the same frame"
            raise DataError(self.describe_item(index),
                            f"image size {image.shape[1]}x{image.shape[0]} and label size "
                            f"{label.shape[1]}x{label.shape[0]} {how}")
        if self.train:
            image, label, landmarks = self.augment(image, label, landmarks)
        image, label, landmarks = T.resize_to_grid(image, label, landmarks, self.resolution, self.resize_mode)
        if self.flip == "always" or (self.flip is True and torch.rand(()).item() < 0.5):
            image, label, landmarks = T.hflip(image, label, landmarks, self._flip_lut, self.landmark_mirror)
        return Sample(
            image=T.normalize_image(image),
            label=None if label is None else torch.from_numpy(label.astype(np.int64)),
            name=self.names[index],
            orig_size=(int(ref_hw[0]), int(ref_hw[1])),
            landmarks=None if landmarks is None else torch.from_numpy(np.asarray(landmarks, dtype=np.float32)),
            index=index,
            taxonomy=self.taxonomy.name,
        )

    def describe_item(self, index: int) -> str:
        """Human-readable location of one example (used in error messages)."""
        return f"{self.root} [{self.split}] {self.names[index]}"

    @cached_property
    def source_dataset(self) -> str:
        """What the data is, for grouping results (:func:`~lt_faceparse.data.files.source_dataset_of`)."""
        return source_dataset_of(self.root, self.dataset_name)

    def describe(self) -> dict:
        """JSON-ready summary (goes into result provenance)."""
        return {
            "dataset": self.source_dataset,
            "format": self.dataset_name,
            "root": str(self.root),
            "split": self.split,
            "merge": self.merge,
            "resolution": self.resolution,
            "resize_mode": self.resize_mode,
            "num_images": len(self),
            "taxonomy": self.taxonomy.name,
        }

    def __repr__(self) -> str:
        d = self.describe()
        return (f"{type(self).__name__}(root={d['root']!r}, split={d['split']!r}, n={d['num_images']}, "
                f"merge={d['merge']!r}, resolution={d['resolution']})")
