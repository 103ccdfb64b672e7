"""Taxonomies that are not built in: compared with each other, adopted from a stored definition
(weight files, records, frequency tables) and built from a list of class names (folder datasets)."""

from __future__ import annotations

import colorsys
import warnings
from typing import Any, Iterable, Mapping, Sequence

from lt_faceparse.errors import DataError
from lt_faceparse.taxonomy import (ACCESSORY, BACKGROUND, BUILTIN_TAXONOMIES, CELEBAMASK_HQ, HEAD, KINDS, ClassInfo,
                                   Taxonomy, register_taxonomy, registered_taxonomy)


# fields that change only how classes look in tables and figures, not what a class id means
COSMETIC_FIELDS = ("display names", "colours", "paper order")


def taxonomy_differences(a: Taxonomy, b: Taxonomy) -> dict[str, str]:
    """What differs between two taxonomies: field -> "<a's value> vs <b's value>" (empty when equal)."""
    out = {}
    views = {
        "class names": lambda t: t.names,
        "display names": lambda t: t.display_names,
        "colours": lambda t: [list(c.color) for c in t.classes],
        "kinds": lambda t: [c.kind for c in t.classes],
        "paper order": lambda t: list(t.paper_order),
        "flip pairs": lambda t: [list(p) for p in t.flip_pairs],
        "groups": lambda t: {g: list(m) for g, m in t.groups.items()},
        "numberings": lambda t: {n: list(o) for n, o in t.numberings.items()},
        "ignore index": lambda t: t.ignore_index,
    }
    for what, view in views.items():
        if view(a) != view(b):
            out[what] = f"{view(a)} vs {view(b)}"
    return out


def adopt_taxonomy(stored: Mapping[str, Any], source: Any = None, *, register: bool = True) -> Taxonomy:
    """The taxonomy a file stores in full (:meth:`Taxonomy.to_dict`), ready for :func:`get_taxonomy`.

    A built-in name must come with exactly the built-in definition; any other taxonomy is rebuilt
    from the data and (``register``) registered in this process. A different taxonomy already
    registered under the same name is an error, unless it differs only in display names, colours or
    column order (:data:`COSMETIC_FIELDS`, e.g. a ``classes.txt`` edited after some files were
    written): then the one in use is kept and a warning names the file. Every error is a
    :class:`~lt_faceparse.errors.DataError` naming ``source`` (the file that holds the data)."""
    try:
        taxonomy = Taxonomy.from_dict(stored)
    except ValueError as err:
        raise DataError(source, f"stored taxonomy is invalid: {err}") from None
    known = registered_taxonomy(taxonomy.name)
    if known is None:
        return register_taxonomy(taxonomy) if register else taxonomy
    differences = taxonomy_differences(taxonomy, known)
    if not differences:
        return known
    text = "; ".join(f"{field} {values}" for field, values in differences.items())
    if taxonomy.name in BUILTIN_TAXONOMIES:
        raise DataError(source, f"stores a taxonomy named {taxonomy.name!r} that differs from the built-in one: {text}")
    if set(differences) <= set(COSMETIC_FIELDS):
        warnings.warn(f"{source}: taxonomy {taxonomy.name!r} differs from the one already in use in this process "
                      f"only in how classes are shown ({text}); the one in use is kept", stacklevel=2)
        return known
    raise DataError(source, f"defines taxonomy {taxonomy.name!r} differently from the one already in use in this "
                            f"process (file vs in use): {text}")


def _auto_color(i: int) -> tuple[int, int, int]:
    """Deterministic distinct colour for user-defined classes (golden-ratio hue walk)."""
    if i == 0:
        return (0, 0, 0)
    h = (i * 0.618033988749895) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.75, 0.95)
    return (int(r * 255), int(g * 255), int(b * 255))


def taxonomy_from_names(
    name: str,
    class_names: Iterable[str],
    *,
    display_names: Sequence[str | None] | None = None,
    kinds: Sequence[str | None] | None = None,
    background: str | None = "background",
    accessories: Iterable[str] = (),
    register: bool = False,
) -> Taxonomy:
    """Build a user-defined taxonomy from a class list (item i = name of id i).

    ``display_names[i]`` (when given and not None) is what tables and figures print for class i;
    otherwise the name itself is printed. ``kinds[i]`` (``background``, ``head`` or ``accessory``),
    when given, sets the kind; otherwise the class named ``background`` is background, the names in
    ``accessories`` and CelebAMask-HQ's accessory names (``eye_g``, ``hat``, ``ear_r``,
    ``neck_l``) are accessories, and the rest are head classes. Colours are generated, distinct
    hues (black for class 0): nothing is borrowed from another taxonomy by similar name. Flip pairs
    are inferred from ``l_X``/``r_X`` (or ``left_X``/``right_X``) name pairs.
    """
    names = [n.strip() for n in class_names]
    if not names or any(not n for n in names):
        raise ValueError(f"taxonomy {name!r}: empty class name in {names}")
    for what, values in (("display_names", display_names), ("kinds", kinds)):
        if values is not None and len(values) != len(names):
            raise ValueError(f"taxonomy {name!r}: {len(values)} {what} for {len(names)} classes")
    acc = set(accessories)
    known = {c.name: c for c in CELEBAMASK_HQ.classes}
    classes = []
    for i, n in enumerate(names):
        ref = known.get(n)
        kind = kinds[i] if kinds is not None and kinds[i] else None
        if kind is None:
            kind = BACKGROUND if n == background else (
                ACCESSORY if n in acc or (ref and ref.kind == ACCESSORY) else HEAD)
        if kind not in KINDS:
            raise ValueError(f"taxonomy {name!r}: class {n!r} has kind {kind!r}, not one of {list(KINDS)}")
        display = display_names[i] if display_names is not None and display_names[i] else n
        classes.append(ClassInfo(i, n, display, _auto_color(i), kind))
    pairs = []
    for i, n in enumerate(names):
        for lp, rp in (("l_", "r_"), ("left_", "right_")):
            if n.startswith(lp) and rp + n[len(lp):] in names:
                pairs.append((i, names.index(rp + n[len(lp):])))
    tax = Taxonomy(name=name, classes=tuple(classes), flip_pairs=tuple(pairs))
    return register_taxonomy(tax, overwrite=True) if register else tax
