"""SynthFace-LT: a procedural face-parsing dataset with CelebAMask-HQ's long tail, written in the
on-disk layout of a real dataset.

Faces are drawn by :mod:`lt_faceparse.data.synthetic_draw` (overlapping part masks, landmarks,
rendered picture; classes present with the probabilities of :data:`DEFAULT_PRESENCE`); this module
writes them as CelebAMask-HQ, LaPa, Helen or a generic folder dataset (see
:func:`generate_synthface`), so the real loaders, their merge presets and ``check-dataset`` run on
them unchanged, and caches complete sets (:func:`ensure_synthface`).

Class mapping for the 11-class formats (LaPa, Helen), which have no ears, neck, clothes or
accessories: ears -> skin (nearest class), neck / clothes / hat / earring / necklace -> background,
eyeglasses are transparent (the eye, brow or skin under the lens keeps its label).

Landmarks: 68 points in the iBUG order (Helen) and 106 points (LaPa; indices 74/104, 83/105, 54,
84, 90 sit where LaPa's five warp points are: image-left eye, image-right eye, nose tip, mouth
corners; the other indices follow the generator's own order, see ``synthetic_face.landmarks106``).

Determinism: image ``i`` depends only on ``(seed, i)``, splits and CelebA file numbers only on
``seed``, so serial and parallel runs write the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image

from lt_faceparse.atomic import atomic_write_json, atomic_write_text
from lt_faceparse.data.celebamask_layout import (
    CELEBA_TRAIN_LAST,
    CELEBA_VAL_LAST,
    IMAGE_DIR,
    IMAGES_PER_MASK_FOLDER,
    MAPPING_FILE,
    MASK_DIR,
    PARTITION_FILE,
    mask_path,
)
from lt_faceparse.data.synthetic_draw import (
    DEFAULT_PRESENCE,
    ELEVEN_CLASS_MAP,
    SynthExample,
    draw_example,
    merged_label,
    sample_presence,
)
from lt_faceparse.errors import DataError
from lt_faceparse.taxonomy import get_taxonomy
from lt_faceparse.terminal import progress_bar

GENERATOR_VERSION = 1
FORMATS = ("celebamask-hq", "lapa", "helen", "folder")
COMPLETE_MARKER = ".synthface_complete.json"

__all__ = ["DEFAULT_PRESENCE", "ELEVEN_CLASS_MAP", "FORMATS", "SynthExample", "draw_example", "ensure_synthface",
           "generate_synthface", "merged_label", "sample_presence", "synthface_dir_name"]


# ------------------------------------------------------------------------------------------------
# Writers (one per on-disk format)
# ------------------------------------------------------------------------------------------------

def _save_png(arr: np.ndarray, path: Path, palette: np.ndarray | None = None) -> None:
    img = Image.fromarray(arr)
    if palette is not None:  # palette PNG: the pixel values are the palette indices
        img.putpalette(np.concatenate([palette.reshape(-1), np.zeros(768 - palette.size, np.uint8)]).tolist())
    img.save(path, format="PNG", compress_level=1)


def _save_jpg(arr: np.ndarray, path: Path) -> None:
    Image.fromarray(arr).save(path, format="JPEG", quality=92)


@dataclass(frozen=True)
class _Job:
    out: str
    fmt: str
    seed: int
    index: int
    split: str
    size: int
    presence: tuple[tuple[str, float], ...]
    image_scale: int = 1
    min_stroke: float = 0.0


def _canvas_size(job: _Job, rng: np.random.Generator) -> tuple[int, int]:
    if job.fmt == "lapa":  # LaPa images vary in size and aspect
        return int(round(job.size * rng.uniform(0.8, 1.25))), job.size
    if job.fmt == "helen":  # Helen images are larger than the face crop
        return int(round(job.size * rng.uniform(1.0, 1.3))), int(round(job.size * rng.uniform(1.0, 1.3)))
    return job.size, job.size


def _write_one(job: _Job) -> tuple[tuple[str, ...], str | None]:
    """Draw and write example ``job.index``; returns the parts drawn and (Helen) its landmarks line."""
    out = Path(job.out)
    hw = _canvas_size(job, np.random.default_rng([job.seed, job.index, 1]))
    ex = draw_example(job.seed, job.index, hw, presence=dict(job.presence), pose=job.fmt, min_stroke=job.min_stroke)
    name = f"{job.index:06d}"
    if job.fmt == "celebamask-hq":
        image = Image.fromarray(ex.image)
        if job.image_scale != 1:  # the real tree stores 1024 px images with 512 px masks
            image = image.resize((hw[1] * job.image_scale, hw[0] * job.image_scale), Image.BILINEAR)
        image.save(out / IMAGE_DIR / f"{job.index}.jpg", format="JPEG", quality=92)
        rgb = job.index % 7 == 3  # some masks are three-channel, like part of the real ones
        for part, m in ex.parts.items():
            arr = m.astype(np.uint8) * 255
            p = mask_path(out, job.index, part)
            _save_png(np.repeat(arr[..., None], 3, axis=2) if rgb else arr, p)
    elif job.fmt == "lapa":
        base = out / job.split
        _save_jpg(ex.image, base / "images" / f"{name}.jpg")
        _save_png(merged_label(ex.parts, hw, "lapa"), base / "labels" / f"{name}.png")
        lines = ["106"] + [f"{x:.2f} {y:.2f}" for x, y in ex.landmarks106]
        (base / "landmarks" / f"{name}.txt").write_text("\n".join(lines) + "\n")
    elif job.fmt == "helen":
        folder = out / ("test" if job.split == "test" else "train")
        label = merged_label(ex.parts, hw, "helen")
        _save_jpg(ex.image, folder / f"{name}_image.jpg")
        _save_png(label, folder / f"{name}_label.png")
        viz = (0.5 * ex.image + 0.5 * get_taxonomy("helen").colorize(label)).astype(np.uint8)
        _save_jpg(viz, folder / f"{name}_viz.jpg")
    else:  # folder
        base = out / job.split
        _save_jpg(ex.image, base / "images" / f"{name}.jpg")
        tax = get_taxonomy("celebamask-hq")
        _save_png(merged_label(ex.parts, hw), base / "labels" / f"{name}.png", palette=tax.palette)
    line68 = None
    if job.fmt == "helen":  # file coordinates are twice the pixel coordinates (loaders scale by 0.5)
        line68 = " ".join(f"{v:.2f}" for v in (ex.landmarks68 * 2.0).reshape(-1)) + f" {name}"
    return tuple(ex.parts), line68


def _assign_splits(num_images: int, splits: Sequence[float], seed: int) -> list[str]:
    if len(splits) != 3 or any(s < 0 for s in splits) or sum(splits) <= 0:
        raise ValueError(f"splits must be three non-negative fractions (train, val, test), got {splits}")
    total = float(sum(splits))
    n_val = int(round(num_images * splits[1] / total))
    n_test = int(round(num_images * splits[2] / total))
    n_train = num_images - n_val - n_test
    labels = np.array(["train"] * n_train + ["val"] * n_val + ["test"] * n_test)
    perm = np.random.default_rng([int(seed), 2**31 - 1]).permutation(num_images)
    return labels[np.argsort(perm)].tolist()


def _celeba_numbers(split_of: list[str], seed: int) -> list[int]:
    """Distinct CelebA file numbers inside each image's CelebA partition range."""
    ranges = {"train": (1, CELEBA_TRAIN_LAST), "val": (CELEBA_TRAIN_LAST + 1, CELEBA_VAL_LAST),
              "test": (CELEBA_VAL_LAST + 1, 202599)}
    rng = np.random.default_rng([int(seed), 2**31 - 2])
    numbers = [0] * len(split_of)
    for split, (lo, hi) in ranges.items():
        idx = [i for i, s in enumerate(split_of) if s == split]
        picks = rng.choice(np.arange(lo, hi + 1), size=len(idx), replace=False)
        for i, n in zip(idx, picks):
            numbers[i] = int(n)
    return numbers


def _params(fmt: str, num_images: int, size: int, seed: int, presence: Mapping[str, float],
            splits: Sequence[float], image_scale: int = 1, min_stroke: float = 0.0) -> dict:
    params = {"generator": "SynthFace-LT", "version": GENERATOR_VERSION, "format": fmt, "num_images": num_images,
              "size": size, "image_scale": image_scale, "seed": seed, "splits": [float(s) for s in splits],
              "presence": {k: float(presence[k]) for k in sorted(presence)}}
    if min_stroke:  # absent when 0, so the sets made before the option existed keep their parameters
        params["min_stroke"] = float(min_stroke)
    return params


def generate_synthface(
    out_dir: str | Path,
    *,
    fmt: str = "celebamask-hq",
    num_images: int = 300,
    size: int = 256,
    seed: int = 0,
    presence: Mapping[str, float] | None = None,
    splits: Sequence[float] = (0.8, 0.1, 0.1),
    num_workers: int | None = None,
    overwrite: bool = False,
    image_scale: int = 1,
    min_stroke: float = 0.0,
) -> Path:
    """Write ``num_images`` SynthFace-LT examples in the on-disk layout of ``fmt`` under ``out_dir``.

    Layouts: ``celebamask-hq`` (images, per-part masks at ``size`` in folders of 2,000, mapping
    file and ``list_eval_partition.txt`` for the mapped CelebA files only; ``image_scale=2`` writes
    the images at twice the mask size, like the real 1024 px images with 512 px masks),
    ``lapa`` (``{split}/images|labels|landmarks``, image heights vary around ``size``), ``helen``
    (``train/`` and ``test/`` with ``_image.jpg``/``_label.png``/``_viz.jpg``, ``landmarks.txt``,
    and ``val.txt`` naming the validation images, kept in ``train/``), ``folder``
    (``{split}/images/*.jpg``, palette ``{split}/labels/*.png``, ``classes.txt``). ``presence.json``
    (the presence table and parameters) is written at the root, and a completion marker last.

    ``presence`` overrides entries of :data:`DEFAULT_PRESENCE`. ``num_workers`` processes draw in
    parallel (default: all CPUs); the output does not depend on it. ``min_stroke``: the least width in
    pixels (at ``size``) of the accessories' strokes and studs (:func:`draw_example`).
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {FORMATS}")
    if num_images < 1 or size < 32:
        raise ValueError(f"need num_images >= 1 and size >= 32, got {num_images}, {size}")
    if not 0.0 <= min_stroke <= size / 4:  # a wider stroke is no longer an accessory
        raise ValueError(f"min_stroke must be between 0 and size / 4 = {size / 4:g} px, got {min_stroke}")
    table = dict(DEFAULT_PRESENCE)
    for k, v in (presence or {}).items():
        if k not in DEFAULT_PRESENCE:
            raise KeyError(f"presence: unknown class {k!r}; classes: {sorted(DEFAULT_PRESENCE)}")
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"presence[{k!r}] = {v} is not a probability")
        table[k] = float(v)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise DataError(out, "output folder is not empty (pass overwrite=True / --overwrite to replace a "
                                 "previous SynthFace-LT set)")
        if not (out / "presence.json").is_file():
            raise DataError(out, "refusing to overwrite: this folder does not hold a SynthFace-LT set")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)

    split_of = _assign_splits(num_images, splits, seed)
    _make_dirs(out, fmt, num_images)
    if image_scale != 1 and fmt != "celebamask-hq":
        raise ValueError("image_scale applies to the celebamask-hq layout only")
    if image_scale not in (1, 2, 4):
        raise ValueError(f"image_scale must be 1, 2 or 4, got {image_scale}")
    params = _params(fmt, num_images, size, seed, table, splits, image_scale, min_stroke)
    atomic_write_json(out / "presence.json", {**params, "class_mapping": _class_mapping_doc(fmt)})

    jobs = [_Job(str(out), fmt, int(seed), i, split_of[i], int(size), tuple(sorted(table.items())), image_scale,
                 float(min_stroke)) for i in range(num_images)]
    workers = (os.cpu_count() or 1) if num_workers is None else max(0, int(num_workers))
    results = _run_jobs(jobs, workers)
    _write_index_files(out, fmt, split_of, seed, [r[1] for r in results])
    atomic_write_json(out / COMPLETE_MARKER, params)
    return out


def _class_mapping_doc(fmt: str) -> dict:
    if fmt in ("lapa", "helen"):
        return {k: (v if v is not None else "not painted (transparent)") for k, v in ELEVEN_CLASS_MAP.items()}
    return {k: k for k in DEFAULT_PRESENCE}


def _make_dirs(out: Path, fmt: str, num_images: int) -> None:
    if fmt == "celebamask-hq":
        (out / IMAGE_DIR).mkdir(parents=True, exist_ok=True)
        for k in range((num_images - 1) // IMAGES_PER_MASK_FOLDER + 1):
            (out / MASK_DIR / str(k)).mkdir(parents=True, exist_ok=True)
    elif fmt == "helen":
        for folder in ("train", "test"):
            (out / folder).mkdir(parents=True, exist_ok=True)
    else:
        subs = ("images", "labels", "landmarks") if fmt == "lapa" else ("images", "labels")
        for split in ("train", "val", "test"):
            for sub in subs:
                (out / split / sub).mkdir(parents=True, exist_ok=True)


def _run_jobs(jobs: list[_Job], workers: int) -> list:
    with progress_bar("SynthFace-LT", len(jobs)) as bar:
        if workers <= 1 or len(jobs) < 8:
            results = []
            for job in jobs:
                results.append(_write_one(job))
                bar.advance()
            return results
        ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        chunk = max(1, min(32, len(jobs) // (8 * workers)))
        results = []
        with ctx.Pool(workers) as pool:
            for r in pool.imap(_write_one, jobs, chunksize=chunk):
                results.append(r)
                bar.advance()
        return results


def _write_index_files(out: Path, fmt: str, split_of: list[str], seed: int, lines68: list) -> None:
    if fmt == "celebamask-hq":
        numbers = _celeba_numbers(split_of, seed)
        rows = ["idx orig_idx orig_file"] + [f"{i} {n - 1} {n:06d}.jpg" for i, n in enumerate(numbers)]
        atomic_write_text(out / MAPPING_FILE, "\n".join(rows) + "\n")
        code = {"train": 0, "val": 1, "test": 2}
        part_rows = [f"{n:06d}.jpg {code[s]}" for n, s in sorted(zip(numbers, split_of))]
        atomic_write_text(out / PARTITION_FILE, "\n".join(part_rows) + "\n")
    elif fmt == "helen":
        atomic_write_text(out / "landmarks.txt", "\n".join(lines68) + "\n")
        val = [f"{i:06d}" for i, s in enumerate(split_of) if s == "val"]
        atomic_write_text(out / "val.txt", "".join(f"{n}\n" for n in val))
    elif fmt == "folder":
        atomic_write_text(out / "classes.txt", "\n".join(get_taxonomy("celebamask-hq").names) + "\n")


def synthface_dir_name(fmt: str, num_images: int, size: int, seed: int, presence: Mapping[str, float] | None,
                       splits: Sequence[float], image_scale: int = 1, min_stroke: float = 0.0) -> str:
    """Folder name of a cached set: readable parameters + hash of the presence table and splits."""
    table = {k: float(v) for k, v in {**DEFAULT_PRESENCE, **(presence or {})}.items()}
    digest = hashlib.sha1(json.dumps([sorted(table.items()), list(map(float, splits)), GENERATOR_VERSION])
                          .encode()).hexdigest()[:8]
    scale = f"-x{image_scale}" if image_scale != 1 else ""
    stroke = f"-w{min_stroke:g}" if min_stroke else ""
    return f"synthface-{fmt}-n{num_images}-s{size}{scale}{stroke}-seed{seed}-{digest}"


def ensure_synthface(
    cache_root: str | Path,
    *,
    fmt: str = "celebamask-hq",
    num_images: int = 300,
    size: int = 256,
    seed: int = 0,
    presence: Mapping[str, float] | None = None,
    splits: Sequence[float] = (0.8, 0.1, 0.1),
    num_workers: int | None = None,
    image_scale: int = 1,
    min_stroke: float = 0.0,
) -> Path:
    """Return a complete SynthFace-LT set with these parameters under ``cache_root``, generating it
    only when no complete set with the same parameters exists (completion marker compared)."""
    out = Path(cache_root) / synthface_dir_name(fmt, num_images, size, seed, presence, splits, image_scale, min_stroke)
    table = {**DEFAULT_PRESENCE, **{k: float(v) for k, v in (presence or {}).items()}}
    want = _params(fmt, num_images, size, seed, table, splits, image_scale, min_stroke)
    marker = out / COMPLETE_MARKER
    if marker.is_file():
        try:
            if json.loads(marker.read_text()) == want:
                return out
        except ValueError:
            pass
    if out.exists():
        shutil.rmtree(out)  # partial or different set in our own cache folder
    return generate_synthface(out, fmt=fmt, num_images=num_images, size=size, seed=seed, presence=presence,
                              splits=splits, num_workers=num_workers, image_scale=image_scale, min_stroke=min_stroke)


def timed_generation(out_dir: str | Path, **kwargs) -> tuple[Path, float]:
    """:func:`generate_synthface` plus its wall time in seconds (used by the CLI and benchmarks)."""
    t0 = time.perf_counter()
    path = generate_synthface(out_dir, **kwargs)
    return path, time.perf_counter() - t0
