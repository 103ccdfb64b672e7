"""Drawing one SynthFace-LT face: geometry, per-part masks, landmarks and the rendered picture.

Canonical face frame: x to the right, y down, unit = face half-width; the subject's left is +x
(image right), following the taxonomy's convention. A similarity transform (rotation, scale,
translation) places the face on the canvas; every part mask and landmark goes through it.

Part masks overlap the way CelebAMask-HQ's do: the skin oval lies under the eyes, brows, nose and
lips; the neck starts under the jaw (overlapping the chin) and lies under the necklace; hair covers
the forehead (bangs), part of the ears, the glasses' temples and, when long, the clothes; glasses
cover the eyes; the hat covers the hair; earrings overlap the ear lobes.

:func:`draw_example` depends only on ``(seed, index)`` (its own ``numpy`` generator seeded with
``[seed, index]``), which makes parallel generation byte-identical to serial generation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from PIL import Image, ImageFilter

from lt_faceparse.data.synthetic_face import Face, landmarks68, landmarks106, sample_face
from lt_faceparse.data.synthetic_parts import Canvas, draw_parts
from lt_faceparse.taxonomy import get_taxonomy

# Probability that a class is drawn in an image (CelebAMask-HQ class names). Head classes ~1.0;
# inner mouth, ears and cloth partial; the accessories form the tail: earring 0.26 and necklace 0.05
# as the rarest classes of the SegFace paper's Figure 1, eyeglasses and hat in between (0.05-0.1).
# No public source gives the real per-class table: these are the generator's targets, not facts
# about CelebAMask-HQ. The label maps keep slightly less of a class where another part paints over
# it (e.g. eyes under glasses with the segface order).
DEFAULT_PRESENCE: dict[str, float] = {
    "skin": 1.0,
    "nose": 0.995,
    "neck": 0.95,
    "hair": 0.97,
    "l_eye": 0.96,
    "r_eye": 0.96,
    "l_brow": 0.97,
    "r_brow": 0.97,
    "u_lip": 0.98,
    "l_lip": 0.985,
    "cloth": 0.72,
    "l_ear": 0.62,
    "r_ear": 0.55,
    "mouth": 0.42,
    "ear_r": 0.26,
    "eye_g": 0.07,
    "hat": 0.06,
    "neck_l": 0.05,
}

# CelebAMask-HQ class name -> 11-class name (LaPa / Helen); None = not painted (transparent).
ELEVEN_CLASS_MAP: dict[str, str | None] = {
    "skin": "skin", "l_ear": "skin", "r_ear": "skin", "l_brow": "l_brow", "r_brow": "r_brow",
    "l_eye": "l_eye", "r_eye": "r_eye", "nose": "nose", "u_lip": "u_lip", "mouth": "mouth", "l_lip": "l_lip",
    "hair": "hair", "neck": "background", "cloth": "background", "hat": "background", "ear_r": "background",
    "neck_l": "background", "eye_g": None,
}

# Paint order used for the rendered picture and the 11-class labels (SegFace's order).
_RENDER_ORDER = ("neck", "skin", "cloth", "l_ear", "r_ear", "l_brow", "r_brow", "l_eye", "r_eye", "nose",
                 "mouth", "l_lip", "u_lip", "hair", "eye_g", "hat", "ear_r", "neck_l")

# Per-format face placement: (face half-width range as a fraction of the short side, rotation
# range in degrees, centre jitter as a fraction of the side).
_POSE = {
    "celebamask-hq": ((0.19, 0.25), 12.0, 0.05),
    "lapa": ((0.15, 0.24), 25.0, 0.08),
    "helen": ((0.17, 0.23), 15.0, 0.1),
    "folder": ((0.17, 0.25), 18.0, 0.06),
}


# ------------------------------------------------------------------------------------------------
# Drawing one example
# ------------------------------------------------------------------------------------------------

@dataclass
class SynthExample:
    """One generated face at canvas resolution."""

    image: np.ndarray  # H x W x 3 uint8
    parts: dict[str, np.ndarray]  # CelebAMask-HQ part name -> H x W bool (overlapping)
    landmarks68: np.ndarray  # 68 x 2 float32, pixel frame
    landmarks106: np.ndarray  # 106 x 2 float32, pixel frame


def sample_presence(rng: np.random.Generator, presence: Mapping[str, float]) -> dict[str, bool]:
    """Which classes one image draws: an independent Bernoulli(presence[class]) per class."""
    draws = rng.random(len(_RENDER_ORDER))
    return {part: bool(draws[i] < presence.get(part, 0.0)) for i, part in enumerate(_RENDER_ORDER)}


def _lowfreq(rng: np.random.Generator, hw: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth noise in [-1, 1] (bilinear upsampling of a coarse random grid)."""
    grid = rng.uniform(-1, 1, (cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(grid, mode="F").resize((hw[1], hw[0]), Image.BILINEAR))


_SKIN_LIGHT, _SKIN_DARK = np.array([242, 205, 178.0]), np.array([88, 56, 38.0])
_HAIR_COLOURS = np.array([[25, 20, 18], [60, 40, 28], [110, 75, 45], [190, 150, 90], [150, 60, 30],
                          [140, 140, 140], [225, 205, 150]], dtype=float)
_METALS = np.array([[212, 175, 55], [200, 200, 205], [235, 225, 210], [180, 120, 80]], dtype=float)


def _window(cx: float, cy: float, r: float, hw: tuple[int, int]) -> tuple[slice, slice, np.ndarray, np.ndarray]:
    """Pixel window around a disc and its (dx^2, dy^2) coordinate grids (empty when off-canvas)."""
    y0, y1 = max(0, int(cy - r) - 1), min(hw[0], int(cy + r) + 2)
    x0, x1 = max(0, int(cx - r) - 1), min(hw[1], int(cx + r) + 2)
    dy = (np.arange(y0, max(y0, y1), dtype=np.float32) - cy)[:, None] ** 2
    dx = (np.arange(x0, max(x0, x1), dtype=np.float32) - cx)[None, :] ** 2
    return slice(y0, max(y0, y1)), slice(x0, max(x0, x1)), dx, dy


def _class_colours(rng: np.random.Generator, tax) -> tuple[np.ndarray, np.ndarray]:
    """K x 3 base colour and K x 2 texture amplitudes (smooth noise, stripes) of every class."""
    k = tax.num_classes
    skin = _SKIN_LIGHT + (_SKIN_DARK - _SKIN_LIGHT) * rng.beta(1.6, 2.2) + rng.normal(0, 6, 3)
    hair = _HAIR_COLOURS[rng.integers(len(_HAIR_COLOURS))] + rng.normal(0, 10, 3)
    lips = skin * 0.45 + np.array([170, 55, 70]) * 0.55 + rng.normal(0, 8, 3)
    colours = np.zeros((k, 3), dtype=np.float32)
    amps = np.zeros((k, 2), dtype=np.float32)  # (smooth noise, stripes) texture amplitude per class
    colours[0], amps[0] = rng.uniform(20, 235, 3), (rng.uniform(20, 60), 0)
    named = {
        "skin": (skin, (10, 0)), "neck": (skin * 0.86, (10, 0)), "l_ear": (skin * 0.93, (8, 0)),
        "r_ear": (skin * 0.93, (8, 0)), "nose": (skin * 0.95 + 4, (8, 0)),
        "l_brow": (hair * 0.6 + 10, (6, 0)), "r_brow": (hair * 0.6 + 10, (6, 0)),
        "l_eye": (np.array([232, 230, 225.0]), (4, 0)), "r_eye": (np.array([232, 230, 225.0]), (4, 0)),
        "u_lip": (lips * 0.92, (6, 0)), "l_lip": (lips, (6, 0)), "mouth": (np.array([70, 22, 28.0]), (8, 0)),
        "hair": (hair, (12, 22)), "cloth": (rng.uniform(15, 240, 3), (rng.uniform(5, 30), rng.uniform(0, 25))),
        "hat": (rng.uniform(15, 240, 3), (12, 8)), "ear_r": (_METALS[rng.integers(4)], (18, 0)),
        "neck_l": (_METALS[rng.integers(4)], (18, 0)), "eye_g": (np.zeros(3), (0, 0)),
    }
    for part, (c, a) in named.items():
        colours[tax.id_of(part)] = c
        amps[tax.id_of(part)] = a
    return colours, amps


def _paint_irises_and_teeth(rng: np.random.Generator, img: np.ndarray, label: np.ndarray, hw: tuple[int, int],
                            cv: Canvas, f: Face, parts: dict[str, np.ndarray], tax) -> None:
    """Irises (with pupils) in the eyes and teeth at the top of an open mouth, painted into ``img``."""
    yy = np.arange(hw[0], dtype=np.float32)[:, None]
    xx = np.arange(hw[1], dtype=np.float32)[None, :]
    unit = float(np.hypot(*cv.m[0]))  # pixels per canonical unit
    for part, sx in (("l_eye", 1.0), ("r_eye", -1.0)):
        if part in parts:
            c = cv.to_pixels(np.array([[sx * f.ex + f.gaze, f.ey]]))[0]
            r = f.eh * 1.15 * unit
            ys, xs, dx, dy = _window(c[0], c[1], r, hw)
            d2 = dx + dy
            iris = (d2 < r * r) & (label[ys, xs] == tax.id_of(part))
            win = img[ys, xs]
            win[iris] = np.array([[70, 45, 25], [40, 80, 130], [60, 110, 70], [30, 25, 20]])[rng.integers(4)]
            win[iris & (d2 < (0.45 * r) ** 2)] = (10, 10, 12)
    if "mouth" in parts:
        top = cv.to_pixels(f.lip_upper_inner(np.array([0.5])))[0]
        nrm = cv.m @ np.array([0.0, 1.0]) / unit
        ys, xs, dx, dy = _window(top[0], top[1], (f.mw + f.oh) * unit, hw)
        depth = (xx[:, xs] - top[0]) * nrm[0] + (yy[ys] - top[1]) * nrm[1]
        teeth = (label[ys, xs] == tax.id_of("mouth")) & (depth < f.oh * 0.45 * unit)
        img[ys, xs][teeth] = (238, 236, 226)


def _render(rng: np.random.Generator, hw: tuple[int, int], cv: Canvas, f: Face,
            parts: dict[str, np.ndarray], extra: dict[str, np.ndarray]) -> np.ndarray:
    """Paint the picture: class colours and textures, iris and teeth, glasses, lighting, noise."""
    h, w = hw
    tax = get_taxonomy("celebamask-hq")
    label = np.zeros(hw, dtype=np.uint8)
    for part in _RENDER_ORDER:
        if part in parts and part != "eye_g":
            label[parts[part]] = tax.id_of(part)

    colours, amps = _class_colours(rng, tax)

    yy = np.arange(h, dtype=np.float32)[:, None]
    xx = np.arange(w, dtype=np.float32)[None, :]
    low = _lowfreq(rng, hw, 6)
    mid = _lowfreq(rng, hw, 24)
    phi = rng.uniform(0, math.pi)
    freq = rng.uniform(0.4, 1.1)
    stripes = np.sin((xx * (math.cos(phi) * freq) + yy * (math.sin(phi) * freq)) + 4 * low)
    texture = amps[label, 0] * (0.6 * low + 0.4 * mid) + amps[label, 1] * stripes
    img = colours[label]
    img += texture[..., None]

    # background clutter: a few discs of other colours behind the person
    for _ in range(rng.integers(1, 5)):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        r = rng.uniform(0.05, 0.3) * min(h, w)
        colour = rng.uniform(10, 245, 3).astype(np.float32)
        ys, xs, dx, dy = _window(cx, cy, r, hw)
        blob = (dx + dy < r * r) & (label[ys, xs] == 0)
        img[ys, xs][blob] = colour + 30 * mid[ys, xs][blob][:, None]

    _paint_irises_and_teeth(rng, img, label, hw, cv, f, parts, tax)

    # glasses: tinted lenses blended over what is underneath, solid frames
    if "lens" in extra:
        sun = rng.random() < 0.3
        tint = rng.uniform(0, 60, 3) if sun else rng.uniform(150, 255, 3)
        alpha = rng.uniform(0.7, 0.9) if sun else rng.uniform(0.1, 0.3)
        lens = extra["lens"]
        img[lens] = (1 - alpha) * img[lens] + alpha * tint
        img[extra["frame"]] = rng.uniform(0, 200, 3)
    # hat, earrings and necklace are in front of the glasses' frames: repaint them last
    for part in ("hat", "ear_r", "neck_l"):
        if part in parts:
            m = parts[part]
            img[m] = colours[tax.id_of(part)] + (amps[tax.id_of(part), 0] * mid[m])[:, None]

    # lighting: directional gradient, global gain and offset, sensor noise
    theta = rng.uniform(0, 2 * math.pi)
    strength = rng.uniform(0.2, 0.8)
    gain = rng.uniform(0.75, 1.15) + ((xx / w - 0.5) * (math.cos(theta) * strength)
                                      + (yy / h - 0.5) * (math.sin(theta) * strength))
    img *= gain[..., None]
    img += rng.uniform(-15, 15) + rng.standard_normal((h, w, 1), dtype=np.float32) * rng.uniform(1.5, 5.0)
    out = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))
    return np.asarray(out.filter(ImageFilter.BoxBlur(rng.uniform(0.3, 0.7))))


def draw_example(seed: int, index: int, hw: tuple[int, int], *, presence: Mapping[str, float] | None = None,
                 pose: str = "celebamask-hq", min_stroke: float = 0.0) -> SynthExample:
    """Draw example ``index`` of the set generated with ``seed`` on an H x W canvas. ``min_stroke``: the
    least width in pixels of the accessories' strokes (glasses frames, necklace chains, earring wires)
    and the least diameter of earring studs (0: their natural size, about a pixel at 64 px)."""
    rng = np.random.default_rng([int(seed), int(index)])
    present = sample_presence(rng, {**DEFAULT_PRESENCE, **(presence or {})})
    f = sample_face(rng, mouth_open=present["mouth"])
    (lo, hi), max_rot, jitter = _POSE[pose]
    side = min(hw)
    scale = side * rng.uniform(lo, hi)
    center = (hw[1] * 0.5 + rng.uniform(-jitter, jitter) * side, hw[0] * 0.46 + rng.uniform(-jitter, jitter) * side)
    cv = Canvas(hw, center, scale, math.radians(rng.uniform(-max_rot, max_rot)), min_stroke)
    parts, extra = draw_parts(rng, cv, f, present)
    image = _render(rng, hw, cv, f, parts, extra)
    return SynthExample(image=image, parts=parts,
                        landmarks68=cv.to_pixels(landmarks68(f)).astype(np.float32),
                        landmarks106=cv.to_pixels(landmarks106(f)).astype(np.float32))


def merged_label(parts: Mapping[str, np.ndarray], hw: tuple[int, int], taxonomy: str = "celebamask-hq") -> np.ndarray:
    """Label map of an example in SegFace's paint order: CelebAMask-HQ ids, or the 11-class ids of
    LaPa/Helen through :data:`ELEVEN_CLASS_MAP`."""
    tax = get_taxonomy(taxonomy)
    label = np.zeros(hw, dtype=np.uint8)
    for part in _RENDER_ORDER:
        if part not in parts:
            continue
        target = part if tax.name == "celebamask-hq" else ELEVEN_CLASS_MAP[part]
        if target is not None:
            label[parts[part]] = tax.id_of(target)
    return label
