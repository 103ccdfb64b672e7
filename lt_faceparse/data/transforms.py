"""Image/label/landmark transforms shared by every dataset.

All functions work on numpy arrays in the original pixel frame: ``image`` H x W x 3 uint8,
``label`` H x W uint8 (our ids, 255 = ignore), ``landmarks`` N x 2 float32 (x, y) in *image*
pixels. Landmark coordinates follow the pixel-centre convention (pixel (0, 0) covers [-0.5, 0.5]),
so a resize by factor s maps x to (x + 0.5) * s - 0.5.

The image and label may have different sizes as long as their aspect ratios agree (CelebAMask-HQ:
1024 px images, 512 px masks): every geometric step resizes both onto one target grid.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from PIL import Image

from lt_faceparse.taxonomy import IGNORE_INDEX

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

RESIZE_MODES = ("square", "pad")

_MEAN = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(3, 1, 1)


def normalize_image(image: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 -> 3 x H x W float32, ImageNet mean/std normalised ((x / 255 - mean) / std).

    Computed in place on the pixel-interleaved copy (each step one pass over contiguous memory) and
    returned as a channels-first view of it.
    """
    t = torch.from_numpy(np.array(image, dtype=np.uint8)).float()  # H x W x 3, a copy
    return t.div_(255.0).sub_(_MEAN.view(3)).div_(_STD.view(3)).permute(2, 0, 1)


def denormalize(image: torch.Tensor) -> np.ndarray:
    """Inverse of :func:`normalize_image`: (B x) 3 x H x W float -> (B x) H x W x 3 uint8."""
    t = image.detach().cpu().float()
    std, mean = _STD.to(t), _MEAN.to(t)
    t = t * std + mean if t.dim() == 3 else t * std[None] + mean[None]
    arr = (t.clamp(0, 1) * 255.0).round().to(torch.uint8)
    return arr.permute(1, 2, 0).numpy() if arr.dim() == 3 else arr.permute(0, 2, 3, 1).numpy()


def resize_image(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Bicubic resize of an H x W x 3 uint8 image to ``size_hw`` (no-op when equal)."""
    h, w = size_hw
    if image.shape[:2] == (h, w):
        return image
    return np.asarray(Image.fromarray(image).resize((w, h), Image.BICUBIC))


def resize_label(label: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an H x W uint8 label map (no-op when equal)."""
    h, w = size_hw
    if label.shape[:2] == (h, w):
        return label
    return np.asarray(Image.fromarray(label).resize((w, h), Image.NEAREST))


def scale_landmarks(landmarks: np.ndarray, from_hw: Sequence[int], to_hw: Sequence[int]) -> np.ndarray:
    """Map (x, y) points from a ``from_hw`` pixel grid onto a ``to_hw`` grid (pixel-centre convention)."""
    sx = to_hw[1] / from_hw[1]
    sy = to_hw[0] / from_hw[0]
    out = np.empty_like(landmarks, dtype=np.float32)
    out[:, 0] = (landmarks[:, 0] + 0.5) * sx - 0.5
    out[:, 1] = (landmarks[:, 1] + 0.5) * sy - 0.5
    return out


def check_aligned(image_hw: Sequence[int], label_hw: Sequence[int], tol: float = 0.02) -> bool:
    """True when an image and its label map cover the same frame (equal aspect ratio within ``tol``)."""
    return abs(image_hw[1] / image_hw[0] - label_hw[1] / label_hw[0]) <= tol * (label_hw[1] / label_hw[0])


def pad_geometry(orig_hw: Sequence[int], size: int) -> tuple[int, int]:
    """Content size (h, w) inside a ``size`` x ``size`` canvas of the aspect-preserving pad mode.

    The content is scaled so its longer side is ``size`` and placed at the top-left corner; the
    rest of the canvas is padding (image 0, label 255).
    """
    h, w = int(orig_hw[0]), int(orig_hw[1])
    s = size / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def unpad(x: torch.Tensor, orig_hw: Sequence[int], size: int) -> torch.Tensor:
    """Crop the content region of a pad-mode tensor ``... x size x size`` (undo the padding)."""
    ch, cw = pad_geometry(orig_hw, size)
    return x[..., :ch, :cw]


def resize_to_grid(
    image: np.ndarray,
    label: np.ndarray | None,
    landmarks: np.ndarray | None,
    size: int | None,
    mode: str = "square",
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Bring image, label and landmarks onto the network grid.

    ``mode="square"``: both resized to ``size`` x ``size`` (bicubic image, nearest label).
    ``mode="pad"``: aspect-preserving resize of the longer side to ``size``, then padded at the
    bottom/right to a square (image 0, label 255 = ignore).
    ``size=None`` keeps the label's resolution (the image is resized onto it when they differ).
    """
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    img_hw = image.shape[:2]
    ref_hw = label.shape[:2] if label is not None else img_hw
    if size is None:
        target = ref_hw
    elif mode == "square":
        target = (size, size)
    else:
        target = pad_geometry(ref_hw, size)
    out_img = resize_image(image, target)
    out_lab = None if label is None else resize_label(label, target)
    out_lm = None if landmarks is None else scale_landmarks(landmarks, img_hw, target)
    if size is not None and mode == "pad" and target != (size, size):
        canvas = np.zeros((size, size, 3), dtype=np.uint8)
        canvas[: target[0], : target[1]] = out_img
        out_img = canvas
        if out_lab is not None:
            lab_canvas = np.full((size, size), IGNORE_INDEX, dtype=np.uint8)
            lab_canvas[: target[0], : target[1]] = out_lab
            out_lab = lab_canvas
    return out_img, out_lab, out_lm


# ---- horizontal flip -------------------------------------------------------------------------------

def _ibug68_mirror() -> np.ndarray:
    """Index permutation mirroring the 68-point iBUG/Helen layout (point i <-> perm[i])."""
    perm = np.arange(68)

    def pair(a: Sequence[int], b: Sequence[int]) -> None:
        for i, j in zip(a, b):
            perm[i], perm[j] = j, i

    pair(range(0, 8), range(16, 8, -1))  # jaw
    pair(range(17, 22), range(26, 21, -1))  # brows
    pair(range(31, 33), range(35, 33, -1))  # nostrils
    pair([36, 37, 38, 39, 40, 41], [45, 44, 43, 42, 47, 46])  # eyes
    pair([48, 49, 50, 55, 56], [54, 53, 52, 59, 58])  # outer lips
    pair([60, 61, 65], [64, 63, 67])  # inner lips
    return perm


def landmark_mirror(num_points: int) -> np.ndarray | None:
    """Permutation that relabels points after a horizontal flip, for the layouts we know.

    5 points (eye, eye, nose, mouth corner, mouth corner) and 68 points (iBUG, Helen) are known.
    LaPa's 106-point order is not documented well enough to mirror safely; callers must supply
    a permutation for it (or not flip).
    """
    if num_points == 5:
        return np.array([1, 0, 2, 4, 3])
    if num_points == 68:
        return _ibug68_mirror()
    return None


def hflip(
    image: np.ndarray,
    label: np.ndarray | None,
    landmarks: np.ndarray | None,
    flip_lut: np.ndarray,
    mirror: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Mirror left-right: labels swap their left/right ids through ``flip_lut`` (taxonomy.flip_lut()),
    landmarks move to x' = W - 1 - x and are re-ordered by ``mirror`` (see :func:`landmark_mirror`)."""
    out_img = np.ascontiguousarray(image[:, ::-1])
    out_lab = None if label is None else np.ascontiguousarray(flip_lut[label[:, ::-1]])
    out_lm = None
    if landmarks is not None:
        if mirror is None:
            mirror = landmark_mirror(len(landmarks))
        if mirror is None:
            raise ValueError(
                f"cannot flip {len(landmarks)}-point landmarks: no mirror permutation known for this "
                "layout; pass one explicitly or disable flipping"
            )
        out_lm = landmarks.astype(np.float32).copy()
        out_lm[:, 0] = image.shape[1] - 1 - out_lm[:, 0]
        out_lm = out_lm[mirror]
    return out_img, out_lab, out_lm
