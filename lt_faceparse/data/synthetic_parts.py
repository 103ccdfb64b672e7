"""SynthFace-LT part masks: each part drawn through the face's similarity transform, overlapping
the way CelebAMask-HQ's masks do. Every function draws its parts in a fixed order from the one
generator, so an example depends only on its seed."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from lt_faceparse.data.synthetic_face import Face, ellipse


class Canvas:
    """Draws canonical-frame polygons into per-part masks through one similarity transform."""

    def __init__(self, hw: tuple[int, int], center: tuple[float, float], scale: float, angle: float,
                 min_stroke: float = 0.0):
        self.h, self.w = hw
        c, s = math.cos(angle), math.sin(angle)
        self.m = scale * np.array([[c, -s], [s, c]])
        self.t = np.array(center)
        self.scale = float(np.hypot(*self.m[0]))  # pixels per canonical unit
        self.min_stroke = min_stroke  # px: the least width of an accessory's strokes and studs

    def to_pixels(self, pts: np.ndarray) -> np.ndarray:
        return pts @ self.m.T + self.t

    def new(self) -> tuple[Image.Image, ImageDraw.ImageDraw]:
        img = Image.new("L", (self.w, self.h), 0)
        return img, ImageDraw.Draw(img)

    def poly(self, draw: ImageDraw.ImageDraw, pts: np.ndarray, fill: int = 255) -> None:
        draw.polygon([tuple(p) for p in self.to_pixels(pts)], fill=fill)

    def line(self, draw: ImageDraw.ImageDraw, pts: np.ndarray, width: float, fill: int = 255, *,
             accessory: bool = False) -> None:
        px = max(1, int(round(width * self.scale)))
        if accessory:  # at least min_stroke px wide, so the part stays visible at a low resolution
            px = max(px, int(math.ceil(self.min_stroke)))
        draw.line([tuple(p) for p in self.to_pixels(pts)], fill=fill, width=px, joint="curve")

    def accessory_radius(self, r: float) -> float:
        """Radius ``r`` (canonical units) of an accessory's stud, at least ``min_stroke / 2`` px."""
        return max(r, 0.5 * self.min_stroke / self.scale)

    @staticmethod
    def mask(img: Image.Image) -> np.ndarray:
        return np.asarray(img) > 0

    def polys_mask(self, pts_list, lines=()) -> np.ndarray:
        """One mask of filled polygons ``pts_list`` and (points, width) polylines ``lines``."""
        img, d = self.new()
        for pts in pts_list:
            self.poly(d, pts)
        for pts, width in lines:
            self.line(d, pts, width)
        return self.mask(img)


def draw_parts(rng: np.random.Generator, cv: Canvas, f: Face, present: dict[str, bool]):
    """Per-part masks (overlapping), plus the glasses' frame/lens split used for rendering."""
    parts: dict[str, np.ndarray] = {}
    extra: dict[str, np.ndarray] = {}
    nkw = _draw_skin_neck_cloth(rng, cv, f, present, parts)
    ear_y, ear_ry = _draw_face_parts(rng, cv, f, present, parts)
    hair_top, hw, hairline = _draw_hair(rng, cv, f, present, parts)
    if present["eye_g"]:
        _draw_glasses(rng, cv, f, parts, extra)
    # hat: crown over the hair plus a brim at the forehead
    if present["hat"]:
        brim_y = hairline - rng.uniform(0.0, 0.12)
        crown = ellipse(0.0, brim_y, hw + 0.05, brim_y - hair_top + rng.uniform(0.25, 0.6), 32, math.pi, 2 * math.pi)
        brim = ellipse(0.0, brim_y, hw + rng.uniform(0.15, 0.45), rng.uniform(0.06, 0.12), 32)
        parts["hat"] = cv.polys_mask([crown, brim])
    if present["ear_r"]:
        _draw_earrings(rng, cv, f, parts, ear_y, ear_ry)
    if present["neck_l"]:
        _draw_necklace(rng, cv, f, parts, nkw)
    return parts, extra


def _draw_skin_neck_cloth(rng: np.random.Generator, cv: Canvas, f: Face, present: dict[str, bool],
                          parts: dict[str, np.ndarray]) -> float:
    """Skin, neck and cloth masks; returns the neck's half-width (the necklace hangs on it)."""
    # skin: the face oval (covers the eyes, brows, nose and lips underneath them)
    face_pts = f.face_outline(np.linspace(0, 2 * math.pi, 64, endpoint=False))
    if present["skin"]:
        parts["skin"] = cv.polys_mask([face_pts])

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
        parts["neck"] = cv.polys_mask([neck] if present["cloth"] else [neck, shoulders])
    if present["cloth"]:
        dip = rng.uniform(0.08, 0.55)
        collar = np.array([(-nkw * 1.15, chest - 0.05), (0.0, chest + dip), (nkw * 1.15, chest - 0.05),
                           (shoulder_w, chest + 0.45), (shoulder_w + 1, 9.0), (-shoulder_w - 1, 9.0),
                           (-shoulder_w, chest + 0.45)])
        parts["cloth"] = cv.polys_mask([collar])
    return nkw


def _draw_face_parts(rng: np.random.Generator, cv: Canvas, f: Face, present: dict[str, bool],
                     parts: dict[str, np.ndarray]) -> tuple[float, float]:
    """Ears, brows, eyes, nose, lips and inner mouth; returns the ears' centre height and half-height."""
    # ears at the sides of the face, overlapping its edge
    ear_y = f.ey + rng.uniform(0.06, 0.16)
    ear_rx, ear_ry = rng.uniform(0.12, 0.16), rng.uniform(0.22, 0.28)
    for part, side in (("l_ear", 1.0), ("r_ear", -1.0)):
        if present[part]:
            parts[part] = cv.polys_mask([ellipse(side * (f.fw + 0.01), ear_y, ear_rx, ear_ry, 28)])

    # brows and eyes (subject's left = +x = image right)
    if present["l_brow"]:
        parts["l_brow"] = cv.polys_mask([f.brow_polygon(f.bx, outer_left=False)])
    if present["r_brow"]:
        parts["r_brow"] = cv.polys_mask([f.brow_polygon(-f.bx, outer_left=True)])
    if present["l_eye"]:
        parts["l_eye"] = cv.polys_mask([f.eye_polygon(f.ex)])
    if present["r_eye"]:
        parts["r_eye"] = cv.polys_mask([f.eye_polygon(-f.ex)])
    if present["nose"]:
        parts["nose"] = cv.polys_mask([f.nose_polygon()])

    u = np.linspace(0, 1, 24)
    if present["u_lip"]:
        parts["u_lip"] = cv.polys_mask([np.concatenate([f.lip_upper_outer(u), f.lip_upper_inner(u[::-1])])])
    if present["l_lip"]:
        parts["l_lip"] = cv.polys_mask([np.concatenate([f.lip_lower_inner(u), f.lip_lower_outer(u[::-1])])])
    if f.oh > 0:
        parts["mouth"] = cv.polys_mask([np.concatenate([f.lip_upper_inner(u), f.lip_lower_inner(u[::-1])])])
    return ear_y, ear_ry


def _draw_hair(rng: np.random.Generator, cv: Canvas, f: Face, present: dict[str, bool],
               parts: dict[str, np.ndarray]) -> tuple[float, float, float]:
    """Hair: a cap over the skull with side strands, minus a face window below the hairline; the
    strands cover part of the ears, long hair falls over the clothes. Returns (top, half-width,
    hairline) of the hair (the hat sits on it)."""
    hair_top = f.fcy - f.fh - rng.uniform(0.12, 0.3)
    hw = f.fw + rng.uniform(0.12, 0.3)
    style = rng.choice(["short", "medium", "long"], p=[0.35, 0.3, 0.35])
    length = {"short": rng.uniform(-0.1, 0.3), "medium": rng.uniform(0.5, 1.3), "long": rng.uniform(1.8, 3.2)}[style]
    cover = rng.uniform(0.0, 1.0)  # how far the strands reach over the ears
    inner_x = f.fw + 0.12 - 0.3 * cover
    cap = ellipse(0.0, f.ey, hw, f.ey - hair_top, 36, math.pi, 2 * math.pi)
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
    return hair_top, hw, hairline


def _draw_glasses(rng: np.random.Generator, cv: Canvas, f: Face, parts: dict[str, np.ndarray],
                  extra: dict[str, np.ndarray]) -> None:
    """Eyeglasses: lenses over the eyes, frames, bridge and temples running into the hair."""
    lrx, lry = f.ew + rng.uniform(0.05, 0.1), rng.uniform(0.12, 0.17)
    ft = rng.uniform(0.025, 0.045)
    lens_y = f.ey + 0.01
    lenses = [ellipse(sx * f.ex, lens_y, lrx, lry, 32) for sx in (-1, 1)]
    img_l, d_l = cv.new()
    for lens in lenses:
        cv.poly(d_l, lens)
    img_f, d_f = cv.new()
    for lens in lenses:
        cv.line(d_f, np.concatenate([lens, lens[:1]]), ft, accessory=True)
    cv.line(d_f, np.array([(-f.ex + lrx, lens_y - 0.03), (f.ex - lrx, lens_y - 0.03)]), ft, accessory=True)
    for sx in (-1, 1):
        cv.line(d_f, np.array([(sx * (f.ex + lrx), lens_y - 0.04), (sx * (f.fw + 0.08), lens_y - 0.02)]), ft,
                accessory=True)
    extra["lens"] = cv.mask(img_l)
    extra["frame"] = cv.mask(img_f)
    parts["eye_g"] = extra["lens"] | extra["frame"]


def _draw_earrings(rng: np.random.Generator, cv: Canvas, f: Face, parts: dict[str, np.ndarray], ear_y: float,
                   ear_ry: float) -> None:
    """Earrings: small studs or drops at the ear lobes."""
    sides = [1.0, -1.0] if rng.random() < 0.6 else [rng.choice([1.0, -1.0])]
    r = cv.accessory_radius(rng.uniform(0.03, 0.055))
    drop = rng.random() < 0.5
    img, d = cv.new()
    for side in sides:
        lobe = np.array([side * (f.fw + 0.03), ear_y + ear_ry * 0.85])
        cv.poly(d, ellipse(lobe[0], lobe[1], r, r, 16))
        if drop:
            cv.line(d, np.array([lobe, lobe + (0, 0.12)]), 0.02, accessory=True)
            cv.poly(d, ellipse(lobe[0], lobe[1] + 0.14, r * 0.9, r * 1.2, 16))
    parts["ear_r"] = cv.mask(img)


def _draw_necklace(rng: np.random.Generator, cv: Canvas, f: Face, parts: dict[str, np.ndarray], nkw: float) -> None:
    """Necklace: a thin U-shaped chain over the neck (and the collar), sometimes with a pendant."""
    top = f.fcy + f.fh * rng.uniform(0.85, 1.0)
    sag = rng.uniform(0.25, 0.55)
    xs = np.linspace(-nkw * 0.95, nkw * 0.95, 20)
    chain = np.stack([xs, top + sag * (1 - (xs / (nkw * 0.95)) ** 2)], 1)
    img, d = cv.new()
    cv.line(d, chain, rng.uniform(0.03, 0.05), accessory=True)
    if rng.random() < 0.5:
        cv.poly(d, ellipse(0.0, top + sag + 0.05, 0.05, 0.07, 16))
    parts["neck_l"] = cv.mask(img)
