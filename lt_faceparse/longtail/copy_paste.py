"""Copy-paste of tail-class regions (Ghiasi et al., CVPR 2021) for aligned face crops.

With probability ``prob`` a training sample receives one pasted region: a class c is drawn
uniformly from the chosen classes that occur in some other training image (class-balanced: a
necklace is pasted as often as an earring), then a donor image containing c uniformly, and the
donor's pixels of class c (image and label) are pasted at the same position, shifted by a jitter of
at most ``jitter`` x the image side in each direction (CelebAMask-HQ and SynthFace-LT faces are
aligned, so a region keeps its place on the face). Pasting works on network-ready samples (after
the base dataset's resize, augmentation and flip); donor and target share the grid.

Occlusion order. A pasted pixel of class c replaces the target pixel of class d only if c lies in
front of d: for CelebAMask-HQ (and SynthFace-LT in its layout) "in front" is the paint order of the
dataset's merge preset, the order its label maps were painted in (``segface``: ... hair, eye_g, hat,
ear_r, neck_l): a pasted hat covers hair, glasses cover the eyes under them, while hair keeps its
pixels against a pasted cloth. One physical exception holds whatever the preset: a necklace never
covers the face or what is worn on it (skin, ears, brows, eyes, nose, mouth, lips, glasses, hat,
earrings), although every preset paints ``neck_l`` after ``skin``: a jittered necklace stops at
the chin instead of being drawn across it. Datasets without a paint order (LaPa, Helen, folders)
paste over every class, as Ghiasi et al. do. Target pixels labelled 255 (ignore) keep their label
and their pixels: what lies there is unknown, so nothing is pasted in front of it. Labels
therefore stay valid class ids or 255.

Randomness comes from torch's global generator, which
:class:`~lt_faceparse.engine.sampling.EpochSeededDataset` seeds per ``(seed, epoch, index)``: the
pastes are deterministic and a resumed run sees the same ones.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from lt_faceparse.errors import DataError
from lt_faceparse.taxonomy import IGNORE_INDEX, Taxonomy

# Physical exceptions to the paint order, per taxonomy: pasted class -> classes it never covers.
NEVER_COVERS: dict[str, dict[str, tuple[str, ...]]] = {
    "celebamask-hq": {
        "neck_l": ("skin", "l_ear", "r_ear", "l_brow", "r_brow", "l_eye", "r_eye", "nose", "mouth", "u_lip",
                   "l_lip", "eye_g", "hat", "ear_r"),
    },
}


def occlusion_table(taxonomy: Taxonomy, paint_order: Sequence[str] | None = None) -> np.ndarray:
    """K x K bool: ``covers[c, d]`` says whether a pasted pixel of class c replaces a pixel of class d.

    ``paint_order``: class names from back to front (a CelebAMask-HQ merge order); classes not in it
    (background, parts a custom order leaves out) lie behind all of them. None: every class covers
    every class. :data:`NEVER_COVERS` then removes the physical exceptions of the taxonomy.
    """
    k = taxonomy.num_classes
    if paint_order is None:
        covers = np.ones((k, k), dtype=bool)
    else:
        rank = np.full(k, -1)
        for position, name in enumerate(paint_order):
            rank[taxonomy.id_of(name)] = position
        covers = (rank[:, None] > rank[None, :]) | np.eye(k, dtype=bool)
    for pasted, behind in NEVER_COVERS.get(taxonomy.name, {}).items():
        if pasted in taxonomy.names:
            for name in behind:
                if name in taxonomy.names:
                    covers[taxonomy.id_of(pasted), taxonomy.id_of(name)] = False
    return covers


def shift_2d(tensor: torch.Tensor, dy: int, dx: int, fill: float | int | bool) -> torch.Tensor:
    """``tensor`` (... x H x W) moved down by ``dy`` and right by ``dx`` pixels; uncovered pixels = ``fill``."""
    h, w = tensor.shape[-2:]
    out = torch.full_like(tensor, fill)
    if abs(dy) >= h or abs(dx) >= w:
        return out
    out[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        tensor[..., max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out


def paste_class(image: torch.Tensor, label: torch.Tensor, donor_image: torch.Tensor, donor_label: torch.Tensor,
                class_id: int, shift: tuple[int, int], covers: torch.Tensor,
                ignore_index: int = IGNORE_INDEX) -> tuple[torch.Tensor, torch.Tensor]:
    """Paste the donor's pixels of ``class_id`` (shifted by ``shift`` = (dy, dx)) onto (image, label).

    ``image``/``donor_image``: C x H x W; ``label``/``donor_label``: H x W ids (255 = ignore);
    ``covers``: the K x K table of :func:`occlusion_table`. Returns new tensors.
    """
    if image.shape != donor_image.shape or label.shape != donor_label.shape:
        raise ValueError(f"copy-paste needs donor and target on one grid, got {tuple(label.shape)} and "
                         f"{tuple(donor_label.shape)}")
    dy, dx = shift
    region = shift_2d(donor_label == class_id, dy, dx, False)  # H x W
    pixels = shift_2d(donor_image, dy, dx, 0.0)  # C x H x W
    valid = label != ignore_index
    coverable = torch.zeros_like(region)
    coverable[valid] = covers[class_id][label[valid]]
    mask = region & coverable
    return torch.where(mask, pixels, image), torch.where(mask, torch.full_like(label, class_id), label)


class CopyPasteDataset(Dataset):
    """``base`` with copy-paste of ``classes`` (ids) from donor images (see the module docstring).

    ``presence``: N x K bool, which classes each image of ``base`` contains (donor lists);
    ``covers``: the occlusion table of :func:`occlusion_table`.
    """

    def __init__(self, base: Dataset, presence: np.ndarray, classes: Sequence[int], *, prob: float = 0.5,
                 jitter: float = 0.02, covers: np.ndarray):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f"copy-paste prob must be in [0, 1], got {prob}")
        if not 0.0 <= jitter <= 0.5:
            raise ValueError(f"copy-paste jitter must be in [0, 0.5], got {jitter}")
        if len(presence) != len(base):
            raise ValueError(f"presence table has {len(presence)} rows, the dataset {len(base)} images")
        self.base = base
        self.prob = float(prob)
        self.jitter = float(jitter)
        self.covers = torch.as_tensor(covers, dtype=torch.bool)
        self.donors = {int(c): np.flatnonzero(presence[:, c]) for c in classes}
        self.classes = [c for c, rows in self.donors.items() if len(rows)]

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> Any:
        sample = self.base[index]
        if not self.classes or torch.rand(()).item() >= self.prob:
            return sample
        class_id = self.classes[int(torch.randint(len(self.classes), ()))]
        donors = self.donors[class_id]
        donors = donors[donors != index]
        if not len(donors):
            return sample
        donor = self.base[int(donors[int(torch.randint(len(donors), ()))])]
        h, w = sample.label.shape
        jy, jx = round(self.jitter * h), round(self.jitter * w)
        shift = (int(torch.randint(-jy, jy + 1, ())), int(torch.randint(-jx, jx + 1, ())))
        if donor.image.shape != sample.image.shape:
            raise DataError(getattr(self.base, "root", None),
                            f"copy-paste needs every image on one grid (set data.resolution); image {index} is "
                            f"{tuple(sample.image.shape[1:])}, its donor {tuple(donor.image.shape[1:])}")
        image, label = paste_class(sample.image, sample.label, donor.image, donor.label, class_id, shift, self.covers)
        return replace(sample, image=image, label=label)
