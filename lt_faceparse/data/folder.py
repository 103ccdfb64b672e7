"""Generic folder dataset: any images + label PNGs + a class list (FASSEG, iBugMask, private sets).

```
ROOT/classes.txt                  line i = name of class id i
ROOT/{split}/images/NAME.jpg|png
ROOT/{split}/labels/NAME.png      single-channel ids, or a palette PNG (its indices are the ids)
```
Without split folders (``ROOT/images``, ``ROOT/labels``) the dataset has one split, ``all``.
Without a ``labels`` folder the images are unlabeled (``read_label`` returns None).

The taxonomy comes from ``classes.txt``: a class list equal to a built-in taxonomy's names uses that
taxonomy (e.g. ``celebamask-hq``); any other list becomes a registered taxonomy named
``folder:<root folder name>`` (flip pairs inferred from ``l_``/``r_`` names).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lt_faceparse.data.base import FaceParsingDataset, check_label_ids, read_id_png, read_rgb
from lt_faceparse.errors import DataError
from lt_faceparse.taxonomy import Taxonomy, get_taxonomy, list_taxonomies, taxonomy_from_names

CLASSES_FILE = "classes.txt"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
ALL_SPLIT = "all"


def read_classes(path: str | Path) -> list[str]:
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "class list not found (line i = name of class id i)")
    names = [line.strip() for line in path.read_text().splitlines()]
    while names and not names[-1]:
        names.pop()
    if not names or any(not n for n in names):
        raise DataError(path, "class list is empty or has an empty line")
    if len(set(names)) != len(names):
        raise DataError(path, "class names must be distinct")
    return names


def taxonomy_for_folder(root: str | Path) -> Taxonomy:
    """The taxonomy named by ``ROOT/classes.txt`` (a built-in one when the names match exactly)."""
    root = Path(root)
    names = read_classes(root / CLASSES_FILE)
    for tax_name in list_taxonomies():
        tax = get_taxonomy(tax_name)
        if tax.names == names:
            return tax
    return taxonomy_from_names(f"folder:{root.resolve().name}", names, register=True)


def folder_splits(root: str | Path) -> list[str]:
    """Splits present under ``root``: sub-folders holding ``images/``, or ``["all"]``."""
    root = Path(root)
    if (root / "images").is_dir():
        return [ALL_SPLIT]
    splits = sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "images").is_dir()) if root.is_dir() else []
    if not splits:
        raise DataError(root, "no images/ folder (expected ROOT/images or ROOT/<split>/images)")
    return splits


class FolderDataset(FaceParsingDataset):
    """One split of a generic folder dataset."""

    dataset_name = "folder"

    def __init__(self, root: str | Path, split: str = ALL_SPLIT, *, taxonomy: str | Taxonomy | None = None, **kwargs):
        root = Path(root)
        splits = folder_splits(root)
        if split not in splits:
            raise DataError(root, f"no split {split!r}; this folder has {splits}")
        self.split_dir = root if split == ALL_SPLIT else root / split
        tax = taxonomy_for_folder(root) if taxonomy is None else get_taxonomy(taxonomy)
        self._images = {p.stem: p for p in sorted((self.split_dir / "images").iterdir())
                        if p.suffix.lower() in IMAGE_SUFFIXES}
        self.labeled = (self.split_dir / "labels").is_dir()
        super().__init__(root, split, tax, sorted(self._images), **kwargs)

    def image_path(self, index: int) -> Path:
        return self._images[self.names[index]]

    def label_path(self, index: int) -> Path:
        return self.split_dir / "labels" / f"{self.names[index]}.png"

    def describe_item(self, index: int) -> str:
        return str(self.image_path(index))

    def read_image(self, index: int) -> np.ndarray:
        return read_rgb(self.image_path(index))

    def read_label(self, index: int) -> np.ndarray | None:
        if not self.labeled:
            return None
        path = self.label_path(index)
        label = read_id_png(path)
        check_label_ids(label, self.taxonomy.num_classes, path)
        return label
