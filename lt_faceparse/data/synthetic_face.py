"""SynthFace-LT face geometry in the canonical face frame (x right, y down, unit = face half-width;
the subject's left is +x): the random face, its part outlines and its 68 and 106 landmarks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 40, t0: float = 0.0,
             t1: float = 2 * math.pi) -> np.ndarray:
    t = np.linspace(t0, t1, n, endpoint=(t1 - t0) < 2 * math.pi - 1e-9)
    return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)


@dataclass
class Face:
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


def sample_face(rng: np.random.Generator, mouth_open: bool) -> Face:
    fw = rng.uniform(0.92, 1.04)
    ex = rng.uniform(0.36, 0.44)
    ey = rng.uniform(-0.16, -0.08)
    return Face(
        fw=fw, fh=rng.uniform(1.22, 1.4), fcy=rng.uniform(0.04, 0.12), chin=rng.uniform(0.15, 0.35),
        ex=ex, ey=ey, ew=rng.uniform(0.16, 0.2), eh=rng.uniform(0.06, 0.095), gaze=rng.uniform(-0.04, 0.04),
        bx=ex + rng.uniform(-0.01, 0.04), by=ey - rng.uniform(0.2, 0.27), bw=rng.uniform(0.2, 0.26),
        bt=rng.uniform(0.05, 0.08), ba=rng.uniform(0.02, 0.06),
        ny=rng.uniform(0.27, 0.35), nw=rng.uniform(0.16, 0.21),
        my=rng.uniform(0.62, 0.72), mw=rng.uniform(0.27, 0.36), hu=rng.uniform(0.05, 0.08),
        hl=rng.uniform(0.06, 0.1), oh=rng.uniform(0.05, 0.16) if mouth_open else 0.0,
        smile=rng.uniform(-0.02, 0.05),
    )


def landmarks68(f: Face) -> np.ndarray:
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


def landmarks106(f: Face) -> np.ndarray:
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
