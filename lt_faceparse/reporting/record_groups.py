"""Grouping records for tables: a protocol group's title and taxonomy, and what counts as a value."""

from __future__ import annotations

import math
from typing import Any, Sequence

from lt_faceparse.records import NO_POSTHOC, taxonomy_of_record
from lt_faceparse.taxonomy import Taxonomy

MIXED = "mixed"


def group_taxonomy(protocol: dict[str, str], records: Sequence[Any]) -> Taxonomy | None:
    """The group's taxonomy (that of its first record)."""
    return taxonomy_of_record(records[0]) if records else None


def protocol_title(protocol: dict[str, str]) -> str:
    posthoc = protocol.get("posthoc", NO_POSTHOC)
    return (f"{protocol['dataset']} / {protocol['split']} split / taxonomy {protocol['taxonomy']} / "
            f"merge {protocol['merge']} / {protocol['protocol']} scoring"
            + ("" if posthoc == NO_POSTHOC else f" / post-hoc: {posthoc}"))


def has_value(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))
