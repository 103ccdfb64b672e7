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
from PIL import Image, ImageDraw, ImageFilter

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

    # neck column from under the jaw (overlapping the chin) down to the chest; bare shoulders join
    # it when there is no cloth
    nkw = f.fw * rng.uniform(0.42, 0.55)
    chest = f.fcy + f.fh + rng.uniform(0.25, 0.55)  # neckline height
    neck_top = f.fcy + f.fh * rng.uniform(0.7, 0.85)  # under the jaw, below the lower lip
    neck = np.array([(-nkw, neck_top), (nkw, neck_top), (nkw * 1.08, chest + 0.4), (-nkw * 1.08, chest + 0.4)])
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
