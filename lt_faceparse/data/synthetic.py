"""SynthFace-LT: a procedural face-parsing dataset with CelebAMask-HQ's long tail.

Each image is a drawn face (skin oval, ears, brows, eyes with iris, nose, lips, open or closed
mouth, hair of several styles, neck, clothes) and, with the probabilities of
:data:`DEFAULT_PRESENCE`, accessories: eyeglasses, hat, earrings, necklace. Pose (rotation, scale,
translation), colours, textures, lighting, hair occluding ears and forehead and glasses over the
eyes vary per image. The per-part masks overlap the way CelebAMask-HQ's do (skin under the eyes,
nose and lips; neck under the jaw and the necklace; hair over ears, clothes and glasses temples;
glasses over the eyes), so the merge presets give different label maps.

The generator writes the real on-disk layout of each format (see :func:`generate_synthface`), so
the real loaders, their merge presets and ``check-dataset`` run on it unchanged. Landmarks come from
the same geometry as the drawn parts: 68 points in the iBUG order (Helen) and 106 points (LaPa;
indices 74/104, 83/105, 54, 84, 90 sit where LaPa's five warp points are: image-left eye,
image-right eye, nose tip, mouth corners; the other indices follow this generator's own order,
documented in :func:`_landmarks106`).

Class mapping for the 11-class formats (LaPa, Helen), which have no ears, neck, clothes or
accessories: ears -> skin (nearest class), neck / clothes / hat / earring / necklace -> background,
eyeglasses are transparent (the eye, brow or skin under the lens keeps its label).

Determinism: the images of one call depend only on (seed, index) -- each image has its own
``numpy`` generator seeded with ``[seed, index]`` -- so serial and parallel runs write the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing as mp
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from lt_faceparse.atomic import atomic_write_json, atomic_write_text
from lt_faceparse.data.celebamask_hq import (
    CELEBA_TRAIN_LAST,
    CELEBA_VAL_LAST,
    IMAGE_DIR,
    IMAGES_PER_MASK_FOLDER,
    MAPPING_FILE,
    MASK_DIR,
    PARTITION_FILE,
    mask_path,
)
from lt_faceparse.errors import DataError
from lt_faceparse.taxonomy import get_taxonomy

GENERATOR_VERSION = 1
FORMATS = ("celebamask-hq", "lapa", "helen", "folder")
COMPLETE_MARKER = ".synthface_complete.json"

# Probability that a class is drawn in an image (CelebAMask-HQ class names). Head classes ~1.0;
# inner mouth, ears and cloth partial; the accessories form the tail (the SegFace paper's Figure 1
# shows about 0.26 and 0.05 for the rarest classes; CelebA's attributes put eyeglasses and hats
# at about 6-7 % and 5 %).
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
# Geometry (canonical face frame: x right, y down, unit = face half-width; subject's left = +x)
# ------------------------------------------------------------------------------------------------

def _ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 40, t0: float = 0.0,
             t1: float = 2 * math.pi) -> np.ndarray:
    t = np.linspace(t0, t1, n, endpoint=(t1 - t0) < 2 * math.pi - 1e-9)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


@dataclass
class _Face:
    """Sampled shape parameters of one face (canonical frame)."""

    fw: float  # face half-width
    fh: float  # face half-height
    fcy: float  # face centre y
    chin: float  # narrowing of the jaw
    ex: float  # eye centre |x|
    ey: float  # eye centre y
    ew: float  # eye half-width
    eh: float  # eye opening (upper lid height)
    gaze: float  # iris x offset
    bx: float
    by: float
    bw: float
    bt: float
    ba: float
    ny: float  # nose tip y
    nw: float  # nostril half-width
    my: float
    mw: float
    hu: float
    hl: float
    oh: float  # mouth opening (0 = closed)
    smile: float

    def face_outline(self, t: np.ndarray) -> np.ndarray:
        x = self.fw * np.cos(t)
        y = self.fcy + self.fh * np.sin(t)
        low = np.clip(np.sin(t), 0, None)
        x = x * (1.0 - self.chin * low ** 2)
        return np.stack([x, y], axis=1)

    # eyes: u in [0, 1] runs from the eye's left corner to its right corner (image left -> right)
    def eye_upper(self, cx: float, u: np.ndarray) -> np.ndarray:
        return np.stack([cx - self.ew + 2 * self.ew * u, self.ey - self.eh * np.sin(np.pi * u) ** 0.8], 1)

    def eye_lower(self, cx: float, u: np.ndarray) -> np.ndarray:
        return np.stack([cx - self.ew + 2 * self.ew * u, self.ey + 0.7 * self.eh * np.sin(np.pi * u) ** 0.9], 1)

    def eye_polygon(self, cx: float) -> np.ndarray:
        u = np.linspace(0, 1, 16)
        return np.concatenate([self.eye_upper(cx, u), self.eye_lower(cx, u[::-1][1:-1])])

    # brows: u from the brow's left end to its right end; `outer_left` says which end is outer
    def brow_edge(self, cx: float, u: np.ndarray, upper: bool, outer_left: bool) -> np.ndarray:
        x = cx - self.bw + 2 * self.bw * u
        arch = self.by - self.ba * np.sin(np.pi * (0.3 + 0.7 * u if outer_left else 0.7 * u))
        inner = u if outer_left else 1 - u  # 0 at the outer end, 1 at the inner end
        thick = self.bt * (0.45 + 0.55 * inner)
        return np.stack([x, arch - thick / 2 if upper else arch + thick / 2], 1)

    def brow_polygon(self, cx: float, outer_left: bool) -> np.ndarray:
        u = np.linspace(0, 1, 12)
        return np.concatenate([self.brow_edge(cx, u, True, outer_left), self.brow_edge(cx, u[::-1], False, outer_left)])

    def nose_polygon(self) -> np.ndarray:
        ny, nw, top = self.ny, self.nw, self.ey + 0.02
        return np.array([(-0.06, top), (0.06, top), (0.6 * nw, ny - 0.12), (nw, ny + 0.02), (0.5 * nw, ny + 0.08),
                         (0.0, ny + 0.09), (-0.5 * nw, ny + 0.08), (-nw, ny + 0.02), (-0.6 * nw, ny - 0.12)])

    # mouth: u from the left corner to the right corner
    def _mouth_base(self, u: np.ndarray) -> np.ndarray:
        return self.my - self.smile * (1 - np.sin(np.pi * u))

    def _mx(self, u: np.ndarray) -> np.ndarray:
        return -self.mw + 2 * self.mw * u

    def lip_upper_outer(self, u):
        s = np.sin(np.pi * u)
        bow = 1 - 0.35 * np.exp(-((u - 0.5) / 0.07) ** 2)
        return np.stack([self._mx(u), self._mouth_base(u) - self.oh / 2 * s - self.hu * s ** 0.5 * bow], 1)

    def lip_upper_inner(self, u):
        return np.stack([self._mx(u), self._mouth_base(u) - self.oh / 2 * np.sin(np.pi * u)], 1)

    def lip_lower_inner(self, u):
        return np.stack([self._mx(u), self._mouth_base(u) + self.oh / 2 * np.sin(np.pi * u)], 1)

    def lip_lower_outer(self, u):
        s = np.sin(np.pi * u)
        return np.stack([self._mx(u), self._mouth_base(u) + self.oh / 2 * s + self.hl * s ** 0.7], 1)


def _sample_face(rng: np.random.Generator, mouth_open: bool) -> _Face:
    fw = rng.uniform(0.92, 1.04)
    ex = rng.uniform(0.36, 0.44)
    ey = rng.uniform(-0.16, -0.08)
    return _Face(
        fw=fw, fh=rng.uniform(1.22, 1.4), fcy=rng.uniform(0.04, 0.12), chin=rng.uniform(0.15, 0.35),
        ex=ex, ey=ey, ew=rng.uniform(0.16, 0.2), eh=rng.uniform(0.06, 0.095), gaze=rng.uniform(-0.04, 0.04),
        bx=ex + rng.uniform(-0.01, 0.04), by=ey - rng.uniform(0.2, 0.27), bw=rng.uniform(0.2, 0.26),
        bt=rng.uniform(0.05, 0.08), ba=rng.uniform(0.02, 0.06),
        ny=rng.uniform(0.27, 0.35), nw=rng.uniform(0.16, 0.21),
        my=rng.uniform(0.62, 0.72), mw=rng.uniform(0.27, 0.36), hu=rng.uniform(0.05, 0.08),
        hl=rng.uniform(0.06, 0.1), oh=rng.uniform(0.05, 0.16) if mouth_open else 0.0,
        smile=rng.uniform(-0.02, 0.05),
    )


def _landmarks68(f: _Face) -> np.ndarray:
    """68 points in the iBUG order (0-16 jaw from the image left, 17-26 brows, 27-35 nose,
    36-47 eyes, 48-67 lips), canonical frame."""
    jaw = f.face_outline(np.linspace(math.pi + 0.12, -0.12, 17))
    u5 = np.linspace(0, 1, 5)
    brow_a = f.brow_edge(-f.bx, u5, True, outer_left=True)  # image-left brow, outer -> inner
    brow_b = f.brow_edge(f.bx, u5, True, outer_left=False)  # image-right brow, inner -> outer
    bridge = np.stack([np.zeros(4), np.linspace(f.ey + 0.02, f.ny, 4)], 1)
    nostrils = np.stack([np.linspace(-0.6, 0.6, 5) * f.nw, np.full(5, f.ny + 0.06)], 1)
    third = np.array([1 / 3, 2 / 3])
    eye_a = np.concatenate([f.eye_upper(-f.ex, np.array([0.0])), f.eye_upper(-f.ex, third),
                            f.eye_upper(-f.ex, np.array([1.0])), f.eye_lower(-f.ex, third[::-1])])
    eye_b = np.concatenate([f.eye_upper(f.ex, np.array([0.0])), f.eye_upper(f.ex, third),
                            f.eye_upper(f.ex, np.array([1.0])), f.eye_lower(f.ex, third[::-1])])
    u_out = np.linspace(1 / 6, 5 / 6, 5)
    outer = np.concatenate([f.lip_upper_outer(np.array([0.0])), f.lip_upper_outer(u_out),
                            f.lip_upper_outer(np.array([1.0])), f.lip_lower_outer(u_out[::-1])])
    u_in = np.array([0.25, 0.5, 0.75])
    inner = np.concatenate([f.lip_upper_inner(np.array([0.04])), f.lip_upper_inner(u_in),
                            f.lip_upper_inner(np.array([0.96])), f.lip_lower_inner(u_in[::-1])])
    pts = np.concatenate([jaw, brow_a, brow_b, bridge, nostrils, eye_a, eye_b, outer, inner])
    assert pts.shape == (68, 2)
    return pts


def _landmarks106(f: _Face) -> np.ndarray:
    """106 points: 0-32 contour (image left -> right), 33-37 / 38-42 upper edges of the image-left /
    image-right brow, 43-46 nose bridge, 47-53 nostril base, 54 nose tip, 55-59 / 60-64 lower brow
    edges, 65 glabella, 66-73 image-left eye contour, 74 its centre, 75-82 image-right eye contour,
    83 its centre, 84-95 outer lips (84 left corner, 90 right corner), 96-103 inner lips,
    104 / 105 pupils of the image-left / image-right eye."""
    contour = f.face_outline(np.linspace(math.pi + 0.12, -0.12, 33))
    u5 = np.linspace(0, 1, 5)
    brows_up = np.concatenate([f.brow_edge(-f.bx, u5, True, True), f.brow_edge(f.bx, u5, True, False)])
    bridge = np.stack([np.zeros(4), np.linspace(f.ey + 0.02, f.ny - 0.08, 4)], 1)
    nostrils = np.stack([np.linspace(-0.7, 0.7, 7) * f.nw, np.full(7, f.ny + 0.06)], 1)
    tip = np.array([[0.0, f.ny]])
    brows_low = np.concatenate([f.brow_edge(-f.bx, u5, False, True), f.brow_edge(f.bx, u5, False, False)])
    glabella = np.array([[0.0, f.by]])
    u3 = np.array([0.25, 0.5, 0.75])

    def eye(cx: float) -> np.ndarray:
        return np.concatenate([f.eye_upper(cx, np.array([0.0])), f.eye_upper(cx, u3),
                               f.eye_upper(cx, np.array([1.0])), f.eye_lower(cx, u3[::-1])])

    u_out = np.linspace(1 / 6, 5 / 6, 5)
    outer = np.concatenate([f.lip_upper_outer(np.array([0.0])), f.lip_upper_outer(u_out),
                            f.lip_upper_outer(np.array([1.0])), f.lip_lower_outer(u_out[::-1])])
    inner = np.concatenate([f.lip_upper_inner(np.array([0.04])), f.lip_upper_inner(u3),
                            f.lip_upper_inner(np.array([0.96])), f.lip_lower_inner(u3[::-1])])
    pupils = np.array([[-f.ex + f.gaze, f.ey], [f.ex + f.gaze, f.ey]])
    pts = np.concatenate([contour, brows_up, bridge, nostrils, tip, brows_low, glabella,
                          eye(-f.ex), [[-f.ex, f.ey]], eye(f.ex), [[f.ex, f.ey]], outer, inner, pupils])
    assert pts.shape == (106, 2)
    return pts


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


class _Canvas:
    """Draws canonical-frame polygons into per-part masks through one similarity transform."""

    def __init__(self, hw: tuple[int, int], center: tuple[float, float], scale: float, angle: float):
        self.h, self.w = hw
        c, s = math.cos(angle), math.sin(angle)
        self.m = scale * np.array([[c, -s], [s, c]])
        self.t = np.array(center)

    def to_pixels(self, pts: np.ndarray) -> np.ndarray:
        return pts @ self.m.T + self.t

    def new(self) -> tuple[Image.Image, ImageDraw.ImageDraw]:
        img = Image.new("L", (self.w, self.h), 0)
        return img, ImageDraw.Draw(img)

    def poly(self, draw: ImageDraw.ImageDraw, pts: np.ndarray, fill: int = 255) -> None:
        draw.polygon([tuple(p) for p in self.to_pixels(pts)], fill=fill)

    def line(self, draw: ImageDraw.ImageDraw, pts: np.ndarray, width: float, fill: int = 255) -> None:
        px = max(1, int(round(width * np.hypot(*self.m[0]))))
        draw.line([tuple(p) for p in self.to_pixels(pts)], fill=fill, width=px, joint="curve")

    @staticmethod
    def mask(img: Image.Image) -> np.ndarray:
        return np.asarray(img) > 0


def sample_presence(rng: np.random.Generator, presence: Mapping[str, float]) -> dict[str, bool]:
    """Which classes one image draws: an independent Bernoulli(presence[class]) per class."""
    draws = rng.random(len(_RENDER_ORDER))
    return {part: bool(draws[i] < presence.get(part, 0.0)) for i, part in enumerate(_RENDER_ORDER)}


def _draw_parts(rng: np.random.Generator, cv: _Canvas, f: _Face, present: dict[str, bool]):
    """Per-part masks (overlapping), plus the glasses' frame/lens split used for rendering."""
    parts: dict[str, np.ndarray] = {}
    extra: dict[str, np.ndarray] = {}

    def draw_poly(pts_list, lines=()):
        img, d = cv.new()
        for pts in pts_list:
            cv.poly(d, pts)
        for pts, width in lines:
            cv.line(d, pts, width)
        return cv.mask(img)

    # skin: the face oval (covers the eyes, brows, nose and lips underneath them)
    face_pts = f.face_outline(np.linspace(0, 2 * math.pi, 64, endpoint=False))
    if present["skin"]:
        parts["skin"] = draw_poly([face_pts])

    # neck column from under the jaw down to the chest; bare shoulders join it when no cloth
    nkw = f.fw * rng.uniform(0.42, 0.55)
    chest = f.fcy + f.fh + rng.uniform(0.25, 0.55)  # neckline height
    neck = np.array([(-nkw, 0.55), (nkw, 0.55), (nkw * 1.08, chest + 0.4), (-nkw * 1.08, chest + 0.4)])
    shoulder_w = rng.uniform(2.2, 2.9)
    shoulders = np.array([(-nkw * 1.1, chest), (nkw * 1.1, chest), (shoulder_w, chest + 0.5), (shoulder_w + 1, 9.0),
                          (-shoulder_w - 1, 9.0), (-shoulder_w, chest + 0.5)])
    if present["neck"]:
        parts["neck"] = draw_poly([neck] if present["cloth"] else [neck, shoulders])
    if present["cloth"]:
        dip = rng.uniform(0.08, 0.55)
        collar = np.array([(-nkw * 1.15, chest - 0.05), (0.0, chest + dip), (nkw * 1.15, chest - 0.05),
                           (shoulder_w, chest + 0.45), (shoulder_w + 1, 9.0), (-shoulder_w - 1, 9.0),
                           (-shoulder_w, chest + 0.45)])
        parts["cloth"] = draw_poly([collar])

    # ears at the sides of the face, overlapping its edge
    ear_y = f.ey + rng.uniform(0.06, 0.16)
    ear_rx, ear_ry = rng.uniform(0.12, 0.16), rng.uniform(0.22, 0.28)
    for part, side in (("l_ear", 1.0), ("r_ear", -1.0)):
        if present[part]:
            parts[part] = draw_poly([_ellipse(side * (f.fw + 0.01), ear_y, ear_rx, ear_ry, 28)])

    # brows and eyes (subject's left = +x = image right)
    if present["l_brow"]:
        parts["l_brow"] = draw_poly([f.brow_polygon(f.bx, outer_left=False)])
    if present["r_brow"]:
        parts["r_brow"] = draw_poly([f.brow_polygon(-f.bx, outer_left=True)])
    if present["l_eye"]:
        parts["l_eye"] = draw_poly([f.eye_polygon(f.ex)])
    if present["r_eye"]:
        parts["r_eye"] = draw_poly([f.eye_polygon(-f.ex)])
    if present["nose"]:
        parts["nose"] = draw_poly([f.nose_polygon()])

    u = np.linspace(0, 1, 24)
    if present["u_lip"]:
        parts["u_lip"] = draw_poly([np.concatenate([f.lip_upper_outer(u), f.lip_upper_inner(u[::-1])])])
    if present["l_lip"]:
        parts["l_lip"] = draw_poly([np.concatenate([f.lip_lower_inner(u), f.lip_lower_outer(u[::-1])])])
    if f.oh > 0:
        parts["mouth"] = draw_poly([np.concatenate([f.lip_upper_inner(u), f.lip_lower_inner(u[::-1])])])

    # hair: a cap over the skull with side strands, minus a face window below the hairline;
    # the strands cover part of the ears, long hair falls over the clothes
    hair_top = f.fcy - f.fh - rng.uniform(0.12, 0.3)
    hw = f.fw + rng.uniform(0.12, 0.3)
    style = rng.choice(["short", "medium", "long"], p=[0.35, 0.3, 0.35])
    length = {"short": rng.uniform(-0.1, 0.3), "medium": rng.uniform(0.5, 1.3), "long": rng.uniform(1.8, 3.2)}[style]
    cover = rng.uniform(0.0, 1.0)  # how far the strands reach over the ears
    inner_x = f.fw + 0.12 - 0.3 * cover
    cap = _ellipse(0.0, f.ey, hw, f.ey - hair_top, 36, math.pi, 2 * math.pi)
    flare = 0.5 if style == "long" else 0.05
    strands = [np.array([(-hw, f.ey), (-inner_x, f.ey), (-inner_x, length), (-hw - flare, length)]),
               np.array([(hw, f.ey), (inner_x, f.ey), (inner_x, length), (hw + flare, length)])]
    hairline = f.fcy - f.fh * rng.uniform(0.45, 0.8)  # lower values of the range = bangs
    if present["hair"]:
        img, d = cv.new()
        cv.poly(d, cap)
        for s in strands:
            cv.poly(d, s)
        # face window: the face below the hairline (slightly narrower than the face) stays free
        t = np.linspace(0, 2 * math.pi, 64, endpoint=False)
        win = np.stack([0.86 * f.fw * np.cos(t), f.fcy + 1.05 * f.fh * np.sin(t)], 1)
        win[:, 1] = np.maximum(win[:, 1], hairline + 0.04 * np.sin(9 * win[:, 0]))
        cv.poly(d, win, fill=0)
        parts["hair"] = cv.mask(img)

    # eyeglasses: lenses over the eyes, frames, bridge and temples running into the hair
    if present["eye_g"]:
        lrx, lry = f.ew + rng.uniform(0.05, 0.1), rng.uniform(0.12, 0.17)
        ft = rng.uniform(0.025, 0.045)
        lens_y = f.ey + 0.01
        lenses = [_ellipse(sx * f.ex, lens_y, lrx, lry, 32) for sx in (-1, 1)]
        img_l, d_l = cv.new()
        for lens in lenses:
            cv.poly(d_l, lens)
        img_f, d_f = cv.new()
        for lens in lenses:
            cv.line(d_f, np.concatenate([lens, lens[:1]]), ft)
        cv.line(d_f, np.array([(-f.ex + lrx, lens_y - 0.03), (f.ex - lrx, lens_y - 0.03)]), ft)
        for sx in (-1, 1):
            cv.line(d_f, np.array([(sx * (f.ex + lrx), lens_y - 0.04), (sx * (f.fw + 0.08), lens_y - 0.02)]), ft)
        extra["lens"] = cv.mask(img_l)
        extra["frame"] = cv.mask(img_f)
        parts["eye_g"] = extra["lens"] | extra["frame"]

    # hat: crown over the hair plus a brim at the forehead
    if present["hat"]:
        brim_y = hairline - rng.uniform(0.0, 0.12)
        crown = _ellipse(0.0, brim_y, hw + 0.05, brim_y - hair_top + rng.uniform(0.25, 0.6), 32, math.pi, 2 * math.pi)
        brim = _ellipse(0.0, brim_y, hw + rng.uniform(0.15, 0.45), rng.uniform(0.06, 0.12), 32)
        parts["hat"] = draw_poly([crown, brim])

    # earrings: small studs or drops at the ear lobes
    if present["ear_r"]:
        sides = [1.0, -1.0] if rng.random() < 0.6 else [rng.choice([1.0, -1.0])]
        r = rng.uniform(0.03, 0.055)
        drop = rng.random() < 0.5
        img, d = cv.new()
        for side in sides:
            lobe = np.array([side * (f.fw + 0.03), ear_y + ear_ry * 0.85])
            cv.poly(d, _ellipse(lobe[0], lobe[1], r, r, 16))
            if drop:
                cv.line(d, np.array([lobe, lobe + (0, 0.12)]), 0.02)
                cv.poly(d, _ellipse(lobe[0], lobe[1] + 0.14, r * 0.9, r * 1.2, 16))
        parts["ear_r"] = cv.mask(img)

    # necklace: a thin U-shaped chain over the neck (and the collar), sometimes with a pendant
    if present["neck_l"]:
        top = f.fcy + f.fh * rng.uniform(0.85, 1.0)
        sag = rng.uniform(0.25, 0.55)
        xs = np.linspace(-nkw * 0.95, nkw * 0.95, 20)
        chain = np.stack([xs, top + sag * (1 - (xs / (nkw * 0.95)) ** 2)], 1)
        img, d = cv.new()
        cv.line(d, chain, rng.uniform(0.03, 0.05))
        if rng.random() < 0.5:
            cv.poly(d, _ellipse(0.0, top + sag + 0.05, 0.05, 0.07, 16))
        parts["neck_l"] = cv.mask(img)

    return parts, extra


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


def _render(rng: np.random.Generator, hw: tuple[int, int], cv: _Canvas, f: _Face,
            parts: dict[str, np.ndarray], extra: dict[str, np.ndarray]) -> np.ndarray:
    """Paint the picture: class colours and textures, iris and teeth, glasses, lighting, noise."""
    h, w = hw
    tax = get_taxonomy("celebamask-hq")
    k = tax.num_classes
    label = np.zeros(hw, dtype=np.uint8)
    for part in _RENDER_ORDER:
        if part in parts and part != "eye_g":
            label[parts[part]] = tax.id_of(part)

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

    # irises (with pupils) and teeth
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
                 pose: str = "celebamask-hq") -> SynthExample:
    """Draw example ``index`` of the set generated with ``seed`` on an H x W canvas."""
    rng = np.random.default_rng([int(seed), int(index)])
    present = sample_presence(rng, {**DEFAULT_PRESENCE, **(presence or {})})
    f = _sample_face(rng, mouth_open=present["mouth"])
    (lo, hi), max_rot, jitter = _POSE[pose]
    side = min(hw)
    scale = side * rng.uniform(lo, hi)
    center = (hw[1] * 0.5 + rng.uniform(-jitter, jitter) * side, hw[0] * 0.46 + rng.uniform(-jitter, jitter) * side)
    cv = _Canvas(hw, center, scale, math.radians(rng.uniform(-max_rot, max_rot)))
    parts, extra = _draw_parts(rng, cv, f, present)
    image = _render(rng, hw, cv, f, parts, extra)
    return SynthExample(image=image, parts=parts,
                        landmarks68=cv.to_pixels(_landmarks68(f)).astype(np.float32),
                        landmarks106=cv.to_pixels(_landmarks106(f)).astype(np.float32))


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
    ex = draw_example(job.seed, job.index, hw, presence=dict(job.presence), pose=job.fmt)
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
            splits: Sequence[float], image_scale: int = 1) -> dict:
    return {"generator": "SynthFace-LT", "version": GENERATOR_VERSION, "format": fmt, "num_images": num_images,
            "size": size, "image_scale": image_scale, "seed": seed, "splits": [float(s) for s in splits],
            "presence": {k: float(presence[k]) for k in sorted(presence)}}


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
    parallel (default: all CPUs); the output does not depend on it.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {FORMATS}")
    if num_images < 1 or size < 32:
        raise ValueError(f"need num_images >= 1 and size >= 32, got {num_images}, {size}")
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
    params = _params(fmt, num_images, size, seed, table, splits, image_scale)
    atomic_write_json(out / "presence.json", {**params, "class_mapping": _class_mapping_doc(fmt)})

    jobs = [_Job(str(out), fmt, int(seed), i, split_of[i], int(size), tuple(sorted(table.items())), image_scale)
            for i in range(num_images)]
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
    from rich.progress import Progress

    with Progress(disable=not sys.stderr.isatty(), transient=True) as progress:
        task = progress.add_task("SynthFace-LT", total=len(jobs))
        if workers <= 1 or len(jobs) < 8:
            results = []
            for job in jobs:
                results.append(_write_one(job))
                progress.advance(task)
            return results
        ctx = mp.get_context("fork" if sys.platform.startswith("linux") else "spawn")
        chunk = max(1, min(32, len(jobs) // (8 * workers)))
        results = []
        with ctx.Pool(workers) as pool:
            for r in pool.imap(_write_one, jobs, chunksize=chunk):
                results.append(r)
                progress.advance(task)
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
                       splits: Sequence[float], image_scale: int = 1) -> str:
    """Folder name of a cached set: readable parameters + hash of the presence table and splits."""
    table = {k: float(v) for k, v in {**DEFAULT_PRESENCE, **(presence or {})}.items()}
    digest = hashlib.sha1(json.dumps([sorted(table.items()), list(map(float, splits)), GENERATOR_VERSION])
                          .encode()).hexdigest()[:8]
    scale = f"-x{image_scale}" if image_scale != 1 else ""
    return f"synthface-{fmt}-n{num_images}-s{size}{scale}-seed{seed}-{digest}"


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
) -> Path:
    """Return a complete SynthFace-LT set with these parameters under ``cache_root``, generating it
    only when no complete set with the same parameters exists (completion marker compared)."""
    out = Path(cache_root) / synthface_dir_name(fmt, num_images, size, seed, presence, splits, image_scale)
    table = {**DEFAULT_PRESENCE, **{k: float(v) for k, v in (presence or {}).items()}}
    want = _params(fmt, num_images, size, seed, table, splits, image_scale)
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
                              splits=splits, num_workers=num_workers, image_scale=image_scale)


def timed_generation(out_dir: str | Path, **kwargs) -> tuple[Path, float]:
    """:func:`generate_synthface` plus its wall time in seconds (used by the CLI and benchmarks)."""
    t0 = time.perf_counter()
    path = generate_synthface(out_dir, **kwargs)
    return path, time.perf_counter() - t0
