"""Named remedy settings: the shipped set ``lt_faceparse/configs/longtail/`` and user files.

A remedy is the ``longtail`` section of a config file. The shipped set is a base config
(``longtail/base.yaml``: SegFace on SynthFace-LT at a CPU budget, no remedy) and one file per
remedy (``longtail/<name>.yaml``: ``base: base.yaml`` plus its ``longtail`` section), so each
trains on its own (``lt-faceparse train --config longtail/focal``) and the set runs as a sweep
axis (``lt-faceparse sweep --config longtail/base --remedies all``). Their parameters were chosen
on SynthFace-LT's val split (see reports/history.md); ``plain`` is the base itself.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Sequence

from lt_faceparse.engine.config import config_dir, read_config_file
from lt_faceparse.errors import DataError
from lt_faceparse.longtail.spec import PLAIN, canonical_longtail, default_longtail

BASE = "base"


def remedy_dir() -> Path:
    return config_dir() / "longtail"


def shipped_remedies() -> list[str]:
    """Names of the shipped remedy files (``plain`` not included: it is the base config)."""
    return sorted(p.stem for p in remedy_dir().glob("*.yaml") if p.stem != BASE)


def resolve_remedy(name: str | Path) -> tuple[str, dict[str, Any]]:
    """``(name, longtail section)`` of ``plain``, a shipped remedy name, or a YAML file (its
    ``longtail`` section, following ``base:`` chains). Errors name the file."""
    if str(name) == PLAIN:
        return PLAIN, default_longtail()
    path = Path(name)
    if not path.is_file():
        shipped = remedy_dir() / f"{path.name.removesuffix('.yaml')}.yaml"
        if not shipped.is_file():
            raise FileNotFoundError(f"{name}: no such remedy (shipped: {', '.join([PLAIN, *shipped_remedies()])}; "
                                    "or a YAML file with a longtail section)")
        path = shipped
    raw = read_config_file(path)
    if not isinstance(raw.get("longtail"), dict):
        raise DataError(path, "has no longtail section to use as a remedy")
    section = {**default_longtail(), **raw["longtail"]}
    canonical_longtail(section, source=path)
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem), section


def resolve_remedies(names: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
    """:func:`resolve_remedy` of each name; ``all`` stands for ``plain`` and every shipped remedy."""
    expanded: list[str] = []
    for name in names:
        expanded += [PLAIN, *shipped_remedies()] if name == "all" else [name]
    resolved = [resolve_remedy(n) for n in dict.fromkeys(expanded)]
    seen: dict[str, int] = {}
    for remedy_name, _ in resolved:
        seen[remedy_name] = seen.get(remedy_name, 0) + 1
    clashes = [n for n, c in seen.items() if c > 1]
    if clashes:
        raise ValueError(f"remedies {clashes} are named twice (remedy files need distinct names)")
    return resolved


def with_remedy(config: dict[str, Any], section: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``config`` whose ``longtail`` section is ``section`` (validated)."""
    out = copy.deepcopy(config)
    out["longtail"] = copy.deepcopy(section)
    canonical_longtail(out["longtail"])
    return out
