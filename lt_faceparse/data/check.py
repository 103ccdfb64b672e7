"""``check-dataset``: every problem of a dataset tree in one pass.

Errors: missing files (image without label or masks, label without image, missing landmarks),
unreadable or truncated images and masks, label/mask size not matching its image, label ids outside
the taxonomy, malformed index files (mapping, partition, landmarks, class list).
Warnings: split sizes that differ from the published ones (expected for SynthFace-LT and subsets),
files the loader ignores (images outside the mapping, unknown mask parts), landmarks outside the image.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from lt_faceparse.data import celebamask_layout as C, folder as Fo, helen as He, lapa as L, transforms as T
from lt_faceparse.data.base import IMAGE_SUFFIXES, open_image, read_id_png
from lt_faceparse.data.registry import _ALIASES
from lt_faceparse.data.lapa import read_landmarks_106
from lt_faceparse.errors import DataError
from lt_faceparse.taxonomy import get_taxonomy
from lt_faceparse.terminal import progress_bar

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One finding: ``level`` (``error``/``warning``), the file (or folder) and what is wrong."""

    level: str
    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.level}: {self.path}: {self.problem}"


def _err(path, problem: str) -> Problem:
    return Problem(ERROR, str(path), problem)


def _warn(path, problem: str) -> Problem:
    return Problem(WARNING, str(path), problem)


def _from_data_error(err: DataError, level: str = ERROR) -> Problem:
    return Problem(level, err.path or "", err.problem)


def _decode(path: Path, problems: list[Problem]) -> np.ndarray | None:
    """Fully decode an image file; record a problem and return None when that fails."""
    try:
        return np.asarray(open_image(path))
    except DataError as err:
        problems.append(_from_data_error(err))
        return None


def _image_size(path: Path, problems: list[Problem], deep: bool) -> tuple[int, int] | None:
    if not deep:
        try:
            with Image.open(path) as img:
                return img.height, img.width
        except (OSError, ValueError, SyntaxError) as err:
            problems.append(_err(path, f"unreadable image ({err})"))
            return None
    arr = _decode(path, problems)
    return None if arr is None else arr.shape[:2]


def _check_ids(label: np.ndarray, num_classes: int, path: Path, problems: list[Problem]) -> None:
    bad = np.unique(label[(label >= num_classes) & (label != 255)])
    if bad.size:
        problems.append(_err(path, f"label ids {bad.tolist()} outside the taxonomy's 0..{num_classes - 1}"))


def _check_label_file(path: Path, image_hw, num_classes: int, problems: list[Problem]) -> None:
    try:
        label = read_id_png(path)
    except DataError as err:
        problems.append(_from_data_error(err))
        return
    if image_hw is not None and label.shape != tuple(image_hw):
        problems.append(_err(path, f"label size {label.shape[1]}x{label.shape[0]} does not match its image "
                                   f"({image_hw[1]}x{image_hw[0]})"))
    _check_ids(label, num_classes, path, problems)


def _split_size_warnings(where: Path, dataset: str, sizes: dict[str, int], published: dict[str, int],
                         notes: dict[str, str] | None = None) -> list[Problem]:
    out = []
    for split, want in published.items():
        have = sizes.get(split, 0)
        if have == 0:  # an empty split folder trains or scores on nothing
            out.append(_err(where, f"split '{split}' has no images (its folder is empty or missing)"))
        elif have != want:
            note = f" ({notes[split]})" if notes and split in notes else ""
            out.append(_warn(where, f"split '{split}' has {have:,} images{note}; the published {dataset} split has "
                                    f"{want:,} (expected for SynthFace-LT or a subset; results are then not "
                                    "comparable to published numbers)"))
    return out


# ---- CelebAMask-HQ -------------------------------------------------------------------------------

def _check_celeba_item(task) -> list[Problem]:
    image_path, masks, deep = task
    problems: list[Problem] = []
    image_path = Path(image_path)
    img_hw = None
    if not image_path.is_file():
        problems.append(_err(image_path, "image file missing"))
    else:
        img_hw = _image_size(image_path, problems, deep)
    if not masks:
        problems.append(_err(image_path, "no mask files for this image"))
    shape = None
    for part, mpath in sorted(masks.items()):
        hw = _image_size(Path(mpath), problems, deep)
        if hw is None:
            continue
        if shape is None:
            shape = hw
        elif hw != shape:
            problems.append(_err(mpath, f"mask size {hw[1]}x{hw[0]} differs from the image's other masks "
                                        f"({shape[1]}x{shape[0]})"))
    if shape is not None and img_hw is not None and not T.check_aligned(img_hw, shape):
        problems.append(_err(image_path, f"image size {img_hw[1]}x{img_hw[0]} and mask size {shape[1]}x{shape[0]} "
                                         "do not cover the same frame"))
    return problems


def _celeba_tasks(root: Path, deep: bool, problems: list[Problem]) -> list:
    img_dir, mask_dir = root / C.IMAGE_DIR, root / C.MASK_DIR
    for d in (img_dir, mask_dir):
        if not d.is_dir():
            problems.append(_err(d, "folder missing"))
    if problems:
        return []
    try:
        mapping = C.read_mapping(root / C.MAPPING_FILE)
    except DataError as err:
        problems.append(_from_data_error(err))
        mapping = {int(p.stem): 0 for p in img_dir.glob("*.jpg") if p.stem.isdigit()}
    part_path = root / C.PARTITION_FILE
    sizes = {s: 0 for s in C.SPLITS}
    partition = None
    if part_path.is_file():
        try:
            partition = C.read_partition(part_path)
        except DataError as err:
            problems.append(_from_data_error(err))
    for idx, number in mapping.items():
        if number <= 0:
            continue
        if partition is not None:
            if number not in partition:
                problems.append(_err(part_path, f"CelebA file {number:06d}.jpg (HQ image {idx}) is not listed"))
                continue
            sizes[partition[number]] += 1
        else:
            sizes[C.celeba_split_of(number)] += 1
    if any(n > 0 for n in mapping.values()):
        problems.extend(_split_size_warnings(root, "CelebAMask-HQ", sizes, C.PUBLISHED_SPLIT_SIZES))

    # every mask file: right folder, known part, belongs to a mapped image
    masks: dict[int, dict[str, str]] = {}
    name_re = re.compile(r"^(\d+)_(.+)\.png$")
    for sub in sorted(os.scandir(mask_dir), key=lambda e: e.name):
        if not sub.is_dir():
            continue
        for entry in os.scandir(sub.path):
            m = name_re.match(entry.name)
            if not m:
                problems.append(_warn(entry.path, "not a mask file name ({idx:05d}_{part}.png); ignored"))
                continue
            idx, part = int(m.group(1)), m.group(2)
            if part not in C.PARTS:
                problems.append(_err(entry.path, f"unknown part {part!r}; parts are {list(C.PARTS)}"))
                continue
            if sub.name != str(idx // C.IMAGES_PER_MASK_FOLDER):
                problems.append(_err(entry.path, f"mask of image {idx} must be in folder "
                                                 f"{idx // C.IMAGES_PER_MASK_FOLDER}, not {sub.name}"))
            if idx not in mapping:
                problems.append(_warn(entry.path, f"mask of image {idx}, which is not in the mapping file; ignored"))
                continue
            masks.setdefault(idx, {})[part] = entry.path
    for p in img_dir.iterdir():
        if p.suffix == ".jpg" and p.stem.isdigit() and int(p.stem) not in mapping:
            problems.append(_warn(p, "image not in the mapping file (belongs to no split); ignored"))
    return [(str(img_dir / f"{idx}.jpg"), masks.get(idx, {}), deep) for idx in sorted(mapping)]


# ---- LaPa ------------------------------------------------------------------------------------------

def _check_lapa_item(task) -> list[Problem]:
    image_path, label_path, lm_path, deep = (Path(t) if isinstance(t, str) else t for t in task)
    problems: list[Problem] = []
    hw = _image_size(image_path, problems, deep)
    if not label_path.is_file():
        problems.append(_err(label_path, "label file missing"))
    elif deep:
        _check_label_file(label_path, hw, get_taxonomy("lapa").num_classes, problems)
    if not lm_path.is_file():
        problems.append(_err(lm_path, "landmark file missing"))
    else:
        try:
            pts = read_landmarks_106(lm_path)
            outside = (pts < -0.5).any() or (pts[:, 0] > hw[1] - 0.5).any() or (pts[:, 1] > hw[0] - 0.5).any() \
                if hw is not None else False
            if outside:
                problems.append(_warn(lm_path, "landmarks outside the image"))
        except DataError as err:
            problems.append(_from_data_error(err))
    return problems


def _lapa_tasks(root: Path, deep: bool, problems: list[Problem]) -> list:
    tasks, sizes = [], {}
    for split in L.SPLITS:
        base = root / split
        if not (base / "images").is_dir():
            problems.append(_err(base / "images", f"LaPa {split} image folder missing"))
            continue
        images = {p.stem: p for p in (base / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
        sizes[split] = len(images)
        labels_dir = base / "labels"
        if labels_dir.is_dir():
            for p in labels_dir.glob("*.png"):
                if p.stem not in images:
                    problems.append(_err(p, "label without an image"))
        for name in sorted(images):
            tasks.append((str(images[name]), str(labels_dir / f"{name}.png"),
                          str(base / "landmarks" / f"{name}.txt"), deep))
    problems.extend(_split_size_warnings(root, "LaPa", sizes, L.PUBLISHED_SPLIT_SIZES))
    return tasks


# ---- Helen -----------------------------------------------------------------------------------------

def _check_helen_item(task) -> list[Problem]:
    image_path, label_path, has_lm, deep = task
    image_path, label_path = Path(image_path), Path(label_path)
    problems: list[Problem] = []
    hw = _image_size(image_path, problems, deep)
    if not label_path.is_file():
        problems.append(_err(label_path, "label file missing"))
    elif deep:
        _check_label_file(label_path, hw, get_taxonomy("helen").num_classes, problems)
    if not has_lm:
        problems.append(_err(image_path, "no line for this image in landmarks.txt"))
    return problems


def _helen_tasks(root: Path, deep: bool, problems: list[Problem]) -> list:
    landmarks: dict = {}
    try:
        landmarks = He.read_landmark_file(root / He.LANDMARK_FILE)
    except DataError as err:
        problems.append(_from_data_error(err))
    tasks = []
    for folder in ("train", "test"):
        d = root / folder
        if not d.is_dir():
            problems.append(_err(d, "Helen folder missing"))
            continue
        images = {p.name[: -len("_image.jpg")] for p in d.glob("*_image.jpg")}
        for p in d.glob("*_label.png"):
            if p.name[: -len("_label.png")] not in images:
                problems.append(_err(p, "label without an image"))
        for name in sorted(images):
            tasks.append((str(d / f"{name}_image.jpg"), str(d / f"{name}_label.png"), name in landmarks, deep))
    try:
        splits = He.helen_splits(root)
        notes = {} if (root / He.VAL_LIST).is_file() else {"val": "no val.txt: val is the test set"}
        problems.extend(_split_size_warnings(root, "Helen", {s: len(v) for s, v in splits.items()},
                                             He.PUBLISHED_SPLIT_SIZES, notes))
    except DataError as err:
        problems.append(_from_data_error(err))
    return tasks


# ---- folder ------------------------------------------------------------------------------------------

def _check_folder_item(task) -> list[Problem]:
    image_path, label_path, num_classes, deep = task
    image_path, label_path = Path(image_path), Path(label_path) if label_path else None
    problems: list[Problem] = []
    hw = _image_size(image_path, problems, deep)
    if label_path is not None:
        if not label_path.is_file():
            problems.append(_err(label_path, "label file missing"))
        elif deep:
            _check_label_file(label_path, hw, num_classes, problems)
    return problems


def _folder_tasks(root: Path, deep: bool, problems: list[Problem]) -> list:
    num_classes = 256
    try:
        num_classes = len(Fo.read_classes(root / Fo.CLASSES_FILE))
    except DataError as err:
        problems.append(_from_data_error(err))
    try:
        splits = Fo.folder_splits(root)
    except DataError as err:
        problems.append(_from_data_error(err))
        return []
    tasks = []
    for split in splits:
        base = root if split == Fo.ALL_SPLIT else root / split
        images = {p.stem: p for p in (base / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
        if not images:
            problems.append(_err(base / "images", "split folder holds no images"))
        labels_dir = base / "labels"
        labeled = labels_dir.is_dir()
        if labeled:
            for p in labels_dir.glob("*.png"):
                if p.stem not in images:
                    problems.append(_err(p, "label without an image"))
        for name in sorted(images):
            tasks.append((str(images[name]), str(labels_dir / f"{name}.png") if labeled else None, num_classes, deep))
    return tasks


_CHECKERS: dict[str, tuple[Callable, Callable]] = {
    "celebamask-hq": (_celeba_tasks, _check_celeba_item),
    "lapa": (_lapa_tasks, _check_lapa_item),
    "helen": (_helen_tasks, _check_helen_item),
    "folder": (_folder_tasks, _check_folder_item),
}


def check_dataset(name: str, root: str | Path, *, deep: bool = True, num_workers: int = 0) -> list[Problem]:
    """Every problem of the ``name`` tree at ``root`` (errors first, then warnings, each by path).

    ``deep=False`` skips decoding pixels (only file presence, headers and index files).
    ``num_workers`` processes decode the files in parallel.
    """
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _CHECKERS:
        raise KeyError(f"unknown dataset {name!r}; known: {sorted(_CHECKERS)}")
    root = Path(root)
    if not root.is_dir():
        return [_err(root, "dataset root folder not found")]
    make_tasks, check_item = _CHECKERS[key]
    problems: list[Problem] = []
    tasks = make_tasks(root, deep, problems)
    problems.extend(p for found in _run(check_item, tasks, num_workers) for p in found)
    return sorted(problems, key=lambda p: (p.level != ERROR, p.path, p.problem))


def _run(fn: Callable, tasks: Sequence, num_workers: int) -> Iterable[list[Problem]]:
    with progress_bar("checking", len(tasks)) as bar:
        if num_workers <= 0 or len(tasks) < 2:
            for t in tasks:
                yield fn(t)
                bar.advance()
            return
        ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        with ctx.Pool(num_workers) as pool:
            for found in pool.imap(fn, tasks, chunksize=max(1, min(64, len(tasks) // (8 * num_workers)))):
                yield found
                bar.advance()


def format_report(problems: Sequence[Problem], name: str, root: str | Path) -> str:
    """Plain-text report: one line per problem and a count summary."""
    errors = sum(p.level == ERROR for p in problems)
    warnings = len(problems) - errors
    lines = [str(p) for p in problems]
    lines.append(f"check-dataset {name} at {root}: {errors} error(s), {warnings} warning(s)")
    return "\n".join(lines)
