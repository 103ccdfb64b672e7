"""Generic folder dataset: any images + label PNGs + a class list (FASSEG, iBugMask, private sets).

```
ROOT/classes.txt                  line i describes class id i (format below)
ROOT/{split}/images/NAME.jpg|png
ROOT/{split}/labels/NAME.png      single-channel ids, or a palette PNG (its indices are the ids)
```
Without split folders (``ROOT/images``, ``ROOT/labels``) the dataset has one split, ``all``.
Without a ``labels`` folder the images are unlabeled (``read_label`` returns None).

``classes.txt``: one line per class, line i (counting from 0) = class id i; blank lines at the end
are ignored, blank lines in between are an error. A line is one of

- ``name`` (no spaces, e.g. ``l_eye``): tables and figures print the name itself;
- ``name display name`` (the name, whitespace, then the display name, which may contain spaces:
  ``mouth Mouth (whole)``): tables and figures print the display name;
- ``name<TAB>display name<TAB>kind``: tab-separated fields, where ``kind`` is ``background``,
  ``head`` or ``accessory`` (accessories are the "tail" columns of the tables). An empty
  display field means the name itself.

Without a kind, the class named ``background`` is background, CelebAMask-HQ's accessory names
(``eye_g``, ``hat``, ``ear_r``, ``neck_l``) are accessories, and every other class is a head class.
Display names and colours are never borrowed from other datasets: tables print the display name
(else the name itself), and each class gets a distinct generated colour.

The taxonomy comes from ``classes.txt``: a list equal to a built-in taxonomy's names (and no
display or kind that differs from it) uses that taxonomy (e.g. ``celebamask-hq``); any other list
becomes a registered taxonomy named ``folder:<root folder name>`` (flip pairs inferred from
``l_``/``r_`` names). Weight files trained on it store the whole taxonomy, so the models work
without the folder. ``taxonomy=`` (e.g. a model's taxonomy, for scoring it on a folder of test
images) replaces ``classes.txt``; when both exist their class names must agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lt_faceparse.custom_taxonomy import taxonomy_from_names
from lt_faceparse.data.base import (IMAGE_SUFFIXES, FaceParsingDataset, check_label_ids, read_id_png, read_rgb,
                                    warn_labels_without_image)
from lt_faceparse.errors import DataError, SplitNotFound
from lt_faceparse.taxonomy import BUILTIN_TAXONOMIES, KINDS, Taxonomy, get_taxonomy

CLASSES_FILE = "classes.txt"
ALL_SPLIT = "all"


@dataclass(frozen=True)
class ClassLine:
    """One line of ``classes.txt``: the name, and the display name and kind when given."""

    name: str
    display: str | None = None
    kind: str | None = None


def read_class_lines(path: str | Path) -> list[ClassLine]:
    """Parse ``classes.txt`` (format in the module docstring); errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "class list not found (line i = name of class id i)")
    try:  # utf-8-sig: a byte-order mark (Windows editors) is not part of the first class name
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as err:
        raise DataError(path, f"not UTF-8 text (byte {err.start}: {err.reason}); save the class list as "
                              "UTF-8") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        raise DataError(path, "class list is empty")
    out = []
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            raise DataError(path, f"line {lineno} is empty (line i names class id i; no gaps allowed)")
        if "\t" in line:
            fields = [f.strip() for f in line.split("\t")]
            if len(fields) > 3:
                raise DataError(path, f"line {lineno}: at most 3 tab-separated fields (name, display, kind), "
                                      f"got {len(fields)}")
            fields += [""] * (3 - len(fields))
            name, display, kind = fields
            if not name or " " in name:
                raise DataError(path, f"line {lineno}: the class name {name!r} must be one word without spaces")
            if kind and kind not in KINDS:
                raise DataError(path, f"line {lineno}: kind {kind!r} is not one of {list(KINDS)}")
            out.append(ClassLine(name, display or None, kind or None))
        else:
            name, _, display = line.strip().partition(" ")
            out.append(ClassLine(name, display.strip() or None))
    names = [c.name for c in out]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DataError(path, f"class names must be distinct; repeated: {repeated}")
    return out


def read_classes(path: str | Path) -> list[str]:
    """The class names of ``classes.txt`` (index = class id)."""
    return [c.name for c in read_class_lines(path)]


def taxonomy_for_folder(root: str | Path) -> Taxonomy:
    """The taxonomy named by ``ROOT/classes.txt`` (a built-in one when names, and any display names
    and kinds given, match it exactly)."""
    root = Path(root)
    lines = read_class_lines(root / CLASSES_FILE)
    names = [c.name for c in lines]
    for tax_name in BUILTIN_TAXONOMIES:
        tax = get_taxonomy(tax_name)
        if tax.names == names and all(c.display in (None, tax[i].display) and c.kind in (None, tax[i].kind)
                                      for i, c in enumerate(lines)):
            return tax
    return taxonomy_from_names(f"folder:{root.resolve().name}", names, display_names=[c.display for c in lines],
                               kinds=[c.kind for c in lines], register=True)


def folder_splits(root: str | Path) -> list[str]:
    """Splits present under ``root``: sub-folders holding ``images/``, or ``["all"]``."""
    root = Path(root)
    if (root / "images").is_dir():
        return [ALL_SPLIT]
    splits = sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "images").is_dir()) if root.is_dir() else []
    if not splits:
        raise DataError(root, "no images/ folder (expected ROOT/images or ROOT/<split>/images)")
    return splits


def _given_taxonomy(root: Path, taxonomy: str | Taxonomy) -> Taxonomy:
    """``taxonomy`` for this folder, checked against ``classes.txt`` when the folder has one."""
    tax = get_taxonomy(taxonomy)
    if (root / CLASSES_FILE).is_file():
        names = read_classes(root / CLASSES_FILE)
        if names != tax.names:
            raise DataError(root / CLASSES_FILE, f"lists classes {names}, but taxonomy {tax.name!r} has {tax.names} "
                                                 "(label ids would mean different classes)")
    return tax


class FolderDataset(FaceParsingDataset):
    """One split of a generic folder dataset."""

    dataset_name = "folder"

    def __init__(self, root: str | Path, split: str = ALL_SPLIT, *, taxonomy: str | Taxonomy | None = None, **kwargs):
        root = Path(root)
        splits = folder_splits(root)
        if split not in splits:
            raise SplitNotFound(root, f"no split {split!r}; this folder has {splits}")
        self.split_dir = root if split == ALL_SPLIT else root / split
        tax = taxonomy_for_folder(root) if taxonomy is None else _given_taxonomy(root, taxonomy)
        self._images = {p.stem: p for p in sorted((self.split_dir / "images").iterdir())
                        if p.suffix.lower() in IMAGE_SUFFIXES}
        self.labeled = (self.split_dir / "labels").is_dir()
        warn_labels_without_image(self.split_dir / "labels", self._images)
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
