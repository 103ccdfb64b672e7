"""Class taxonomies: the class list of each face-parsing dataset and converters between numberings.

Everything that prints, plots or remaps a class asks a :class:`Taxonomy`; nothing else hard-codes
class counts or ids.

Left/right convention: ``l_*`` / "L-" follows the CelebAMask-HQ file names and the dataset ids of
LaPa/Helen, i.e. the *subject's* left as annotated by the dataset authors (FaRL's "re" is our
``l_eye``). A horizontal flip swaps every pair in :attr:`Taxonomy.flip_pairs`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np


IGNORE_INDEX = 255

BACKGROUND = "background"
HEAD = "head"
ACCESSORY = "accessory"
KINDS = (BACKGROUND, HEAD, ACCESSORY)
DICT_FORMAT = 1  # version of Taxonomy.to_dict's layout


@dataclass(frozen=True)
class ClassInfo:
    """One class of a taxonomy."""

    id: int
    name: str  # short machine name, e.g. "l_eye"
    display: str  # name as printed in the papers' tables, e.g. "L-Eye"
    color: tuple[int, int, int]
    kind: str = HEAD  # "background" | "head" | "accessory"


@dataclass(frozen=True)
class Taxonomy:
    """Class list of a dataset with display order, palette, flip pairs, groups and numberings.

    ``numberings`` maps a foreign numbering's name to the list of our class names in that
    numbering's id order (index = foreign id). Converters build lookup tables from it.
    """

    name: str
    classes: tuple[ClassInfo, ...]
    paper_order: tuple[int, ...] = ()
    flip_pairs: tuple[tuple[int, int], ...] = ()
    groups: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    numberings: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ignore_index: int = IGNORE_INDEX

    def __post_init__(self) -> None:
        ids = [c.id for c in self.classes]
        if ids != list(range(len(ids))):
            raise ValueError(f"taxonomy {self.name!r}: class ids must be 0..K-1 in order, got {ids}")
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ValueError(f"taxonomy {self.name!r}: duplicate class names in {names}")
        k = len(ids)
        for i in self.paper_order:
            if not 0 <= i < k:
                raise ValueError(f"taxonomy {self.name!r}: paper_order id {i} outside 0..{k - 1}")
        for a, b in self.flip_pairs:
            if not (0 <= a < k and 0 <= b < k) or a == b:
                raise ValueError(f"taxonomy {self.name!r}: bad flip pair {(a, b)}")
        for g, members in self.groups.items():
            if not members or any(not 0 <= m < k for m in members):
                raise ValueError(f"taxonomy {self.name!r}: bad group {g!r}: {members}")
        for num, order in self.numberings.items():
            unknown = [n for n in order if n is not None and n not in names]
            if unknown:
                raise ValueError(f"taxonomy {self.name!r}: numbering {num!r} names unknown {unknown}")

    # ---- basic views -------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.classes]

    @property
    def display_names(self) -> list[str]:
        return [c.display for c in self.classes]

    @property
    def palette(self) -> np.ndarray:
        """K x 3 uint8 colours, row i = class i."""
        return np.array([c.color for c in self.classes], dtype=np.uint8)

    @property
    def background_ids(self) -> list[int]:
        return [c.id for c in self.classes if c.kind == BACKGROUND]

    @property
    def foreground_ids(self) -> list[int]:
        return [c.id for c in self.classes if c.kind != BACKGROUND]

    @property
    def accessory_ids(self) -> list[int]:
        return [c.id for c in self.classes if c.kind == ACCESSORY]

    @property
    def display_order(self) -> list[int]:
        """Foreground ids in the paper's table column order (id order when none is given)."""
        return list(self.paper_order) if self.paper_order else self.foreground_ids

    def id_of(self, name: str) -> int:
        for c in self.classes:
            if c.name == name or c.display == name:
                return c.id
        raise KeyError(f"taxonomy {self.name!r} has no class {name!r}; classes: {self.names}")

    def __getitem__(self, class_id: int) -> ClassInfo:
        return self.classes[class_id]

    # ---- label maps ----------------------------------------------------------------------------
    def flip_lut(self) -> np.ndarray:
        """256-entry uint8 table mapping each id to its mirror id (ignore and unknown ids kept)."""
        lut = np.arange(256, dtype=np.uint8)
        for a, b in self.flip_pairs:
            lut[a], lut[b] = b, a
        return lut

    def colorize(self, label: np.ndarray) -> np.ndarray:
        """H x W ids -> H x W x 3 uint8 colours (ignore/unknown ids painted white)."""
        table = np.full((256, 3), 255, dtype=np.uint8)
        table[: self.num_classes] = self.palette
        return table[np.asarray(label, dtype=np.uint8)]

    # ---- numberings ------------------------------------------------------------------------------
    def lut_from(self, numbering: str) -> np.ndarray:
        """256-entry table: id in ``numbering`` -> our id. Ids outside the numbering map to ignore."""
        order = self._numbering(numbering)
        lut = np.full(256, self.ignore_index, dtype=np.uint8)
        for foreign_id, name in enumerate(order):
            if name is not None:
                lut[foreign_id] = self.id_of(name)
        lut[self.ignore_index] = self.ignore_index
        return lut

    def lut_to(self, numbering: str) -> np.ndarray:
        """256-entry table: our id -> id in ``numbering`` (classes it lacks map to ignore)."""
        order = self._numbering(numbering)
        lut = np.full(256, self.ignore_index, dtype=np.uint8)
        for foreign_id, name in enumerate(order):
            if name is not None:
                lut[self.id_of(name)] = foreign_id
        return lut

    def convert_from(self, label: np.ndarray, numbering: str) -> np.ndarray:
        return self.lut_from(numbering)[np.asarray(label, dtype=np.uint8)]

    def convert_to(self, label: np.ndarray, numbering: str) -> np.ndarray:
        return self.lut_to(numbering)[np.asarray(label, dtype=np.uint8)]

    def _numbering(self, numbering: str) -> tuple[str, ...]:
        if numbering in ("ours", self.name):
            return tuple(self.names)
        try:
            return self.numberings[numbering]
        except KeyError:
            raise KeyError(
                f"taxonomy {self.name!r} has no numbering {numbering!r}; "
                f"known: {['ours', *self.numberings]}"
            ) from None

    def describe(self) -> dict:
        """JSON-ready summary (stored in records and checkpoints)."""
        return {
            "name": self.name,
            "num_classes": self.num_classes,
            "names": self.names,
        }

    # ---- storage -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The whole taxonomy as JSON-ready data (weight files, records and frequency reports store
        it): ``name``, ``classes`` (``id, name, display, color, kind`` each), ``paper_order``,
        ``flip_pairs``, ``groups``, ``numberings`` and ``ignore_index``.
        :meth:`from_dict` rebuilds an equal taxonomy."""
        return {
            "format": DICT_FORMAT,
            "name": self.name,
            "classes": [{"id": c.id, "name": c.name, "display": c.display, "color": list(c.color), "kind": c.kind}
                        for c in self.classes],
            "paper_order": list(self.paper_order),
            "flip_pairs": [list(p) for p in self.flip_pairs],
            "groups": {g: list(members) for g, members in self.groups.items()},
            "numberings": {n: list(order) for n, order in self.numberings.items()},
            "ignore_index": self.ignore_index,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Taxonomy":
        """Rebuild a taxonomy from :meth:`to_dict`'s output; ``ValueError`` says what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a taxonomy must be a JSON object, got {type(data).__name__}")
        if data.get("format", DICT_FORMAT) != DICT_FORMAT:
            raise ValueError(f"taxonomy format {data.get('format')!r}; this library reads format {DICT_FORMAT}")
        missing = [k for k in ("name", "classes") if k not in data]
        if missing:
            raise ValueError(f"taxonomy lacks {missing}")
        name = data["name"]
        if not isinstance(name, str) or not name:
            raise ValueError(f"taxonomy name must be a non-empty string, got {name!r}")
        rows = data["classes"]
        if not isinstance(rows, list) or not rows:
            raise ValueError(f"taxonomy {name!r}: classes must be a non-empty list")
        classes = []
        for i, row in enumerate(rows):
            try:
                color = tuple(int(v) for v in row["color"])
                info = ClassInfo(int(row["id"]), str(row["name"]), str(row["display"]), color, str(row["kind"]))
            except (KeyError, TypeError, ValueError) as err:
                raise ValueError(f"taxonomy {name!r}: classes[{i}] must hold id, name, display, color "
                                 f"[r, g, b] and kind ({err.__class__.__name__}: {err})") from None
            if len(color) != 3 or not all(0 <= v <= 255 for v in color):
                raise ValueError(f"taxonomy {name!r}: classes[{i}] colour {list(color)} is not 3 values in 0..255")
            if info.kind not in KINDS:
                raise ValueError(f"taxonomy {name!r}: classes[{i}] kind {info.kind!r} is not one of {list(KINDS)}")
            classes.append(info)
        try:
            return cls(
                name=name,
                classes=tuple(classes),
                paper_order=tuple(int(i) for i in data.get("paper_order", ())),
                flip_pairs=tuple((int(a), int(b)) for a, b in data.get("flip_pairs", ())),
                groups={str(g): tuple(int(m) for m in members) for g, members in data.get("groups", {}).items()},
                numberings={str(n): tuple(order) for n, order in data.get("numberings", {}).items()},
                ignore_index=int(data.get("ignore_index", IGNORE_INDEX)),
            )
        except (TypeError, AttributeError) as err:
            raise ValueError(f"taxonomy {name!r}: malformed paper_order, flip_pairs, groups or numberings "
                             f"({err})") from None


# ------------------------------------------------------------------------------------------------
# Built-in taxonomies
# ------------------------------------------------------------------------------------------------

def _classes(rows: Sequence[tuple[str, str, tuple[int, int, int], str]]) -> tuple[ClassInfo, ...]:
    return tuple(ClassInfo(i, n, d, c, k) for i, (n, d, c, k) in enumerate(rows))


# SegFace / FaRL ids for CelebAMask-HQ.
CELEBAMASK_HQ = Taxonomy(
    name="celebamask-hq",
    classes=_classes([
        ("background", "Background", (0, 0, 0), BACKGROUND),
        ("neck", "Neck", (255, 153, 51), HEAD),
        ("skin", "Face", (204, 0, 0), HEAD),
        ("cloth", "Cloth", (0, 204, 0), HEAD),
        ("l_ear", "L-Ear", (102, 51, 0), HEAD),
        ("r_ear", "R-Ear", (255, 0, 0), HEAD),
        ("l_brow", "L-Brow", (153, 51, 255), HEAD),
        ("r_brow", "R-Brow", (204, 0, 204), HEAD),
        ("l_eye", "L-Eye", (51, 51, 255), HEAD),
        ("r_eye", "R-Eye", (0, 204, 255), HEAD),
        ("nose", "Nose", (76, 153, 0), HEAD),
        ("mouth", "I-Mouth", (102, 204, 0), HEAD),
        ("l_lip", "L-Lip", (0, 0, 153), HEAD),
        ("u_lip", "U-Lip", (255, 255, 0), HEAD),
        ("hair", "Hair", (0, 0, 204), HEAD),
        ("eye_g", "E-Glasses", (204, 204, 0), ACCESSORY),
        ("hat", "Hat", (0, 255, 255), ACCESSORY),
        ("ear_r", "Earring", (255, 51, 153), ACCESSORY),
        ("neck_l", "Necklace", (0, 51, 0), ACCESSORY),
    ]),
    # Face, Nose, E-Glasses, L-Eye, R-Eye, L-Brow, R-Brow, L-Ear, R-Ear, I-Mouth, U-Lip, L-Lip,
    # Hair, Hat, Earring, Necklace, Neck, Cloth (SegFace Table 1b).
    paper_order=(2, 10, 15, 8, 9, 6, 7, 4, 5, 11, 13, 12, 14, 16, 17, 18, 1, 3),
    flip_pairs=((4, 5), (6, 7), (8, 9)),
    groups={
        "eyes": (8, 9),
        "brows": (6, 7),
        "ears": (4, 5),
        "mouth": (11, 12, 13),
        "accessories": (15, 16, 17, 18),
    },
    numberings={
        # face-parsing.PyTorch (BiSeNet, 79999_iter.pth)
        "zll": ("background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear",
                "r_ear", "ear_r", "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth",
                "hair", "hat"),
        # the dataset authors' preprocessing script (g_mask.py label list order)
        "official": ("background", "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow",
                     "l_ear", "r_ear", "mouth", "u_lip", "l_lip", "hair", "hat", "ear_r", "neck_l",
                     "neck", "cloth"),
    },
)

_ELEVEN = _classes([
    ("background", "Background", (0, 0, 0), BACKGROUND),
    ("skin", "Skin", (204, 0, 0), HEAD),
    ("l_brow", "L-Brow", (153, 51, 255), HEAD),
    ("r_brow", "R-Brow", (204, 0, 204), HEAD),
    ("l_eye", "L-Eye", (51, 51, 255), HEAD),
    ("r_eye", "R-Eye", (0, 204, 255), HEAD),
    ("nose", "Nose", (76, 153, 0), HEAD),
    ("u_lip", "U-Lip", (255, 255, 0), HEAD),
    ("mouth", "I-Mouth", (102, 204, 0), HEAD),
    ("l_lip", "L-Lip", (0, 0, 153), HEAD),
    ("hair", "Hair", (0, 0, 204), HEAD),
])
# Skin, Hair, Nose, L-Eye, R-Eye, L-Brow, R-Brow, L-Lip, I-Mouth, U-Lip (SegFace Table 1a).
_ELEVEN_ORDER = (1, 10, 6, 4, 5, 2, 3, 9, 8, 7)

LAPA = Taxonomy(
    name="lapa",
    classes=_ELEVEN,
    paper_order=_ELEVEN_ORDER,
    flip_pairs=((2, 3), (4, 5)),
    groups={"eyes": (4, 5), "brows": (2, 3), "mouth": (7, 8, 9)},
    numberings={"authors": tuple(c.name for c in _ELEVEN)},
)

HELEN = Taxonomy(
    name="helen",
    classes=_ELEVEN,
    paper_order=_ELEVEN_ORDER,
    flip_pairs=((2, 3), (4, 5)),
    groups={
        "eyes": (4, 5),
        "brows": (2, 3),
        "mouth": (7, 8, 9),
        "overall": (2, 3, 4, 5, 6, 7, 8, 9),
    },
    numberings={"authors": tuple(c.name for c in _ELEVEN)},
)

_REGISTRY: dict[str, Taxonomy] = {}
BUILTIN_TAXONOMIES: tuple[str, ...] = (CELEBAMASK_HQ.name, LAPA.name, HELEN.name)


def register_taxonomy(taxonomy: Taxonomy, *, overwrite: bool = False) -> Taxonomy:
    """Make ``taxonomy`` known to :func:`get_taxonomy` in this process. A different taxonomy of the
    same name is refused unless ``overwrite`` (the built-in ones can never be replaced)."""
    if taxonomy.name in BUILTIN_TAXONOMIES and taxonomy.name in _REGISTRY and _REGISTRY[taxonomy.name] != taxonomy:
        raise ValueError(f"{taxonomy.name!r} is a built-in taxonomy and cannot be redefined")
    if taxonomy.name in _REGISTRY and not overwrite and _REGISTRY[taxonomy.name] != taxonomy:
        raise ValueError(f"a different taxonomy named {taxonomy.name!r} is already registered")
    _REGISTRY[taxonomy.name] = taxonomy
    return taxonomy


for _t in (CELEBAMASK_HQ, LAPA, HELEN):
    register_taxonomy(_t)

_ALIASES = {"celebamask": "celebamask-hq", "celeba": "celebamask-hq", "celebamaskhq": "celebamask-hq"}


def get_taxonomy(name: str | Taxonomy) -> Taxonomy:
    """Look a taxonomy up by name (``celebamask-hq``, ``lapa``, ``helen`` or a registered one)."""
    if isinstance(name, Taxonomy):
        return name
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in _REGISTRY:
        key = name  # registered user taxonomies keep their case (e.g. folder:MyFaces)
    try:
        return _REGISTRY[key]
    except KeyError:
        raise KeyError(f"unknown taxonomy {name!r}; known: {sorted(_REGISTRY)}") from None


def registered_taxonomy(name: str) -> Taxonomy | None:
    """The taxonomy registered under exactly ``name`` in this process, or None."""
    return _REGISTRY.get(name)


def list_taxonomies() -> list[str]:
    return sorted(_REGISTRY)
