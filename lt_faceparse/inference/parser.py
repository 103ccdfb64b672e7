"""Parse users' face images with a trained SegFace: any size, no labels needed.

Images are resized (bicubic) to the model's square input, parsed in batches, and the logits are
resized back to each original size (bilinear) before the argmax, so labels and probabilities
live on the original pixel grid. Models trained with the RoI tanh warp (LaPa) need 5 landmarks
per image instead: the warp maps the face to the model's input and the logits back.
"""

from __future__ import annotations

import io
import json
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from rich.progress import Progress

from lt_faceparse.atomic import atomic_write_bytes
from lt_faceparse.data.base import IMAGE_SUFFIXES
from lt_faceparse.data.transforms import normalize_image, resize_image
from lt_faceparse.data.warp import TanhWarp, five_points_from_106
from lt_faceparse.engine.compile import CompiledOrEager, resolve_compile
from lt_faceparse.errors import BatchIncomplete, DataError
from lt_faceparse.longtail.posthoc import apply_posthoc
from lt_faceparse.taxonomy import Taxonomy, get_taxonomy
from lt_faceparse.weights import load_model, taxonomy_of
from lt_faceparse.zoo import pretrained_weights

PARSER_IMAGE_SUFFIXES = (*IMAGE_SUFFIXES, ".bmp", ".webp", ".tif", ".tiff")  # datasets' and more
LANDMARKS_NEEDED = ("this model was trained on RoI tanh-warped faces: pass 5 (or 106) landmarks per image "
                    "(--landmarks FILE)")


@dataclass
class FaceParse:
    """The parse of one image on its original pixel grid."""

    label: np.ndarray  # H x W uint8 class ids
    probs: np.ndarray | None = None  # K x H x W float32 softmax probabilities (when asked)


class FaceParser:
    """Run a face parser on arbitrary images.

    ``model`` maps B x 3 x R x R normalised images to B x K x R x R logits (``R = resolution``).
    ``warp``: None, or ``"tanh"`` for models trained on RoI tanh-warped faces (LaPa): these need 5
    landmarks per image, and each image is parsed in its own frame (no resize; the warp maps it).

    Post-hoc options (:mod:`lt_faceparse.longtail.posthoc`): ``logit_adjust`` = τ subtracts τ log π from
    the logits (π: pixel priors from ``priors``, a ``class_frequencies.csv`` or
    :class:`~lt_faceparse.longtail.priors.ClassPriors`, else from ``metadata["longtail"]["priors"]`` of
    a weight file trained with them; with ``target_priors`` τ (log π − log π') instead, a label-shift
    correction towards the priors π' of the images to parse); ``tta="flip"`` averages the logits of each
    image and of its mirror with the left/right classes swapped; ``tau_norm`` = τ rescales each class
    vector of the classifier w_c to w_c / ||w_c||^τ (bias kept; SegFace: per image), and the LWS scales
    of a weight file's ``metadata`` are re-applied. ``self.posthoc`` states what was applied.

    ``compile``: False (eager), True (``torch.compile``: CUDA graphs via ``"reduce-overhead"`` on
    CUDA, where a batch-1 pass is launch-bound; ``"default"`` on the CPU), ``"auto"`` (True on CUDA
    only) or a torch.compile mode; see :mod:`lt_faceparse.engine.compile`. The first batch of each
    size then pays the compilation; a failed compilation falls back to eager with a warning.
    """

    def __init__(self, model: nn.Module, taxonomy: str | Taxonomy, resolution: int, *,
                 device: str | torch.device = "cpu", batch_size: int = 4, warp: str | None = None,
                 logit_adjust: float | None = None, tta: str | None = None, priors=None,
                 metadata: dict | None = None, compile: bool | str = False, tau_norm: float | None = None,
                 target_priors=None):
        self.taxonomy = get_taxonomy(taxonomy)
        model, self.posthoc = apply_posthoc(model, self.taxonomy, logit_adjust=logit_adjust, tta=tta,
                                            priors_file=priors, metadata=metadata, tau_norm=tau_norm,
                                            target_priors=target_priors)
        # channels-last memory: convolutions run in NHWC and SegFace's face tokens need no transpose
        self.model = model.to(device, memory_format=torch.channels_last).eval()
        self.resolution = int(resolution)
        self.device = torch.device(device)
        self.net = CompiledOrEager(self.model, resolve_compile(compile, self.device, training=False)).eval()
        self.batch_size = batch_size
        if warp not in (None, "tanh"):
            raise DataError(None, f"unknown warp {warp!r}; expected None or 'tanh'")
        self.warp = warp
        self._warped: nn.Module | None = None

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str | torch.device = "cpu", batch_size: int = 4,
                        logit_adjust: float | None = None, tta: str | None = None, priors=None,
                        compile: bool | str = False, tau_norm: float | None = None,
                        target_priors=None) -> "FaceParser":
        """A parser for one of our weight files (taxonomy, resolution and warp from its metadata; no
        dataset needed: the file holds the whole taxonomy; post-hoc options and ``compile`` as in the
        class docstring)."""
        model, meta = load_model(path, map_location=device)
        return cls(model, taxonomy_of(meta, path), meta["resolution"], device=device, batch_size=batch_size,
                   warp=meta.get("warp"), logit_adjust=logit_adjust, tta=tta, priors=priors, metadata=meta,
                   compile=compile, tau_norm=tau_norm, target_priors=target_priors)

    @classmethod
    def from_pretrained(cls, name: str, **kwargs) -> "FaceParser":
        """A parser for released model ``name`` (``lt-faceparse zoo list``, e.g. ``"segface/swinb_celeba_512"``):
        its weight file is downloaded and converted on first use, then read from the cache
        (:func:`lt_faceparse.zoo.pretrained_weights`); ``kwargs`` as in :meth:`from_checkpoint`."""
        return cls.from_checkpoint(pretrained_weights(name), **kwargs)

    # ---- arrays in, arrays out -------------------------------------------------------------------
    def predict(self, images: Sequence[np.ndarray], landmarks: Sequence[np.ndarray] | None = None, *,
                probs: bool = False) -> list[FaceParse]:
        """Parse H_i x W_i x 3 uint8 RGB images; ``landmarks[i]``: 5 x 2 (x, y) pixels, for warp models."""
        if self.warp is None and landmarks is not None:
            raise DataError(None, "landmarks given, but this model was not trained on tanh-warped faces")
        if self.warp is not None:
            if landmarks is None:
                raise DataError(None, LANDMARKS_NEEDED)
            return [self._predict_warped(img, lm, probs) for img, lm in zip(images, landmarks)]
        results: list[FaceParse] = []
        for start in range(0, len(images), self.batch_size):
            chunk = images[start:start + self.batch_size]
            batch = torch.stack([normalize_image(resize_image(img, (self.resolution,) * 2)) for img in chunk])
            batch = batch.to(self.device, memory_format=torch.channels_last)
            with torch.inference_mode():
                logits = self.net(batch)
                results += [self._finish(lg[None], img.shape[:2], probs) for lg, img in zip(logits, chunk)]
        return results

    def _predict_warped(self, image: np.ndarray, points: np.ndarray, probs: bool) -> FaceParse:
        if self._warped is None:
            self._warped = TanhWarp(self.net, out_size=self.resolution).eval()
        points = torch.as_tensor(np.asarray(points, dtype=np.float32)).reshape(1, 5, 2)
        with torch.inference_mode():
            logits = self._warped(normalize_image(image)[None].to(self.device), points.to(self.device))
            return self._finish(logits, image.shape[:2], probs)

    @staticmethod
    def _finish(logits: torch.Tensor, size: tuple[int, int], probs: bool) -> FaceParse:
        """1 x K x h x w logits -> parse at ``size`` (bilinear logits, then argmax)."""
        if tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(logits.float(), size=size, mode="bilinear", align_corners=False)
        label = logits[0].argmax(0).to(torch.uint8).cpu().numpy()
        p = logits[0].float().softmax(0).cpu().numpy() if probs else None
        return FaceParse(label, p)

    # ---- files in, files out ---------------------------------------------------------------------
    def parse_files(self, inputs: Iterable[str | Path], out_dir: str | Path, *, probs: bool = False,
                    landmarks_file: str | Path | None = None, strict: bool = False) -> list[Path]:
        """Parse image files and folders of images; write ``<stem>_label.png`` (class ids),
        ``<stem>_overlay.png`` (taxonomy colours over the image) and, with ``probs``,
        ``<stem>_probs/<id>_<name>.png`` (probability x 255). Returns the label paths.

        An image that cannot be read is reported (a warning naming it) and skipped; the others are
        parsed, then :class:`~lt_faceparse.errors.BatchIncomplete` says how many failed. ``strict``:
        raise the first bad image's :class:`DataError` at once instead."""
        paths = collect_images(inputs)
        points = read_landmarks(landmarks_file, paths) if landmarks_file is not None else None
        out_dir = Path(out_dir)
        written: list[Path] = []
        failures: list[tuple[str, str]] = []

        with Progress(disable=not sys.stderr.isatty()) as progress:
            task = progress.add_task("parsing", total=len(paths))
            for start in range(0, len(paths), self.batch_size):
                chunk = paths[start:start + self.batch_size]
                lms = None if points is None else points[start:start + self.batch_size]
                readable, images, lms = _readable(chunk, lms, failures, strict)
                parses = self.predict(images, lms, probs=probs) if images else []
                for path, image, parse in zip(readable, images, parses):
                    written.append(self._write(out_dir, path.stem, image, parse))
                progress.advance(task, len(chunk))
        if failures:
            raise BatchIncomplete(f"{len(failures)} of {len(paths)} image(s) could not be parsed, each reported "
                                  f"above (first: {failures[0][0]}: {failures[0][1]}); the other {len(written)} "
                                  f"were written to {out_dir}",
                                  failures=failures, done=len(written))
        return written

    def _write(self, out_dir: Path, stem: str, image: np.ndarray, parse: FaceParse) -> Path:
        label_path = out_dir / f"{stem}_label.png"
        atomic_write_bytes(label_path, png_bytes(parse.label))
        atomic_write_bytes(out_dir / f"{stem}_overlay.png", png_bytes(overlay(image, parse.label, self.taxonomy)))
        if parse.probs is not None:
            for c in self.taxonomy.classes:
                plane = np.round(parse.probs[c.id] * 255).astype(np.uint8)
                atomic_write_bytes(out_dir / f"{stem}_probs" / f"{c.id:02d}_{c.name}.png", png_bytes(plane))
        return label_path


def parse_images(checkpoint: str | Path, inputs: Iterable[str | Path], out_dir: str | Path, *,
                 probs: bool = False, landmarks_file: str | Path | None = None,
                 device: str = "cpu", batch_size: int = 4, logit_adjust: float | None = None,
                 tta: str | None = None, priors: str | Path | None = None, compile: bool | str = False,
                 tau_norm: float | None = None, strict: bool = False,
                 target_priors: str | Path | None = None) -> list[Path]:
    """Parse image files/folders with the model stored at ``checkpoint``; see :meth:`FaceParser.parse_files`
    (``strict``: stop at the first bad image; post-hoc options and ``compile``: :class:`FaceParser`)."""
    parser = FaceParser.from_checkpoint(checkpoint, device=device, batch_size=batch_size, logit_adjust=logit_adjust,
                                        tta=tta, priors=priors, compile=compile, tau_norm=tau_norm,
                                        target_priors=target_priors)
    return parser.parse_files(inputs, out_dir, probs=probs, landmarks_file=landmarks_file, strict=strict)


def _readable(paths: list[Path], landmarks: list[np.ndarray] | None, failures: list[tuple[str, str]],
              strict: bool) -> tuple[list[Path], list[np.ndarray], list[np.ndarray] | None]:
    """The images of ``paths`` that read (with their landmarks); each that does not is warned about
    and added to ``failures`` (``strict``: its error is raised)."""
    kept, images, kept_landmarks = [], [], []
    for i, path in enumerate(paths):
        try:
            images.append(read_image(path))
        except DataError as err:
            if strict:
                raise
            warnings.warn(f"skipped {err}", stacklevel=3)
            failures.append((str(path), err.problem))
            continue
        kept.append(path)
        if landmarks is not None:
            kept_landmarks.append(landmarks[i])
    return kept, images, None if landmarks is None else kept_landmarks


def collect_images(inputs: Iterable[str | Path]) -> list[Path]:
    """Image files named directly or found (sorted, non-recursive) in named folders; stems must be unique."""
    paths: list[Path] = []
    for item in map(Path, inputs):
        if item.is_dir():
            paths += sorted(p for p in item.iterdir() if p.suffix.lower() in PARSER_IMAGE_SUFFIXES)
        elif item.is_file():
            paths.append(item)
        else:
            raise FileNotFoundError(f"{item}: no such image file or folder")
    if not paths:
        raise DataError(None, f"no images found in {[str(i) for i in inputs]}")
    seen: dict[str, Path] = {}
    for p in paths:
        if p.stem in seen:
            raise DataError(p, f"has the same name stem as {seen[p.stem]}; their outputs would collide")
        seen[p.stem] = p
    return paths


def read_image(path: Path) -> np.ndarray:
    """H x W x 3 uint8 RGB, or a DataError naming the file."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as err:  # PIL raises several types for unreadable files
        raise DataError(path, f"cannot read image ({err.__class__.__name__}: {err})") from None


def read_landmarks(path: str | Path, images: Sequence[Path]) -> list[np.ndarray]:
    """5 x 2 points per image from a JSON file ``{"<file name or stem>": [[x, y], ...5]}``.

    106-point LaPa landmarks are reduced to the warp's 5 points.
    """
    path = Path(path)
    try:
        table = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(path, f"cannot read landmarks JSON ({err})") from None
    points = []
    for image in images:
        entry = table.get(image.name, table.get(image.stem))
        if entry is None:
            raise DataError(path, f"has no landmarks for {image.name}")
        arr = np.asarray(entry, dtype=np.float32)
        if arr.shape == (106, 2):
            arr = np.asarray(five_points_from_106(arr), dtype=np.float32)
        if arr.shape != (5, 2):
            raise DataError(path, f"landmarks of {image.name} have shape {arr.shape}, expected 5 x 2 or 106 x 2")
        points.append(arr)
    return points


def overlay(image: np.ndarray, label: np.ndarray, taxonomy: Taxonomy, alpha: float = 0.5) -> np.ndarray:
    """Blend the taxonomy colours of ``label`` over ``image`` (background pixels left as they are)."""
    colours = taxonomy.colorize(label).astype(np.float32)
    mix = (1 - alpha) * image.astype(np.float32) + alpha * colours
    keep = np.isin(label, taxonomy.background_ids)[..., None]
    return np.where(keep, image, np.round(mix)).astype(np.uint8)


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()
