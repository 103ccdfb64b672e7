"""Whether records may share a table: the provenance keys that must agree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from lt_faceparse.errors import IncomparableError
from lt_faceparse.records.provenance import COMPARABILITY_KEYS
from lt_faceparse.records.record import ResultRecord


@dataclass(frozen=True)
class Mismatch:
    """Record ``index`` differs from record 0 (the reference) in provenance ``key``."""

    key: str
    index: int
    label: str
    value: Any
    reference: Any

    def __str__(self) -> str:
        return f"{self.key}: {self.label} has {self.value!r}, reference has {self.reference!r}"


def check_comparable(records: Sequence[ResultRecord], force: bool = False,
                     keys: Sequence[str] = COMPARABILITY_KEYS,
                     hint: str = "pass force=True to compare anyway") -> list[Mismatch]:
    """Compare every record with the first on taxonomy, split, merge preset and protocol.

    Raises :class:`IncomparableError` listing the differences (and ``hint``) unless ``force``; with ``force`` the
    list of :class:`Mismatch` is returned (empty when all agree) so tables can mark those rows."""
    mismatches = []
    if records:
        ref = records[0].provenance
        for i, rec in enumerate(records[1:], start=1):
            label = f"{rec.label} [{rec.path}]" if rec.path else rec.label
            for k in keys:
                value, reference = getattr(rec.provenance, k), getattr(ref, k)
                if value != reference:
                    mismatches.append(Mismatch(k, i, label, value, reference))
    if mismatches and not force:
        ref_label = f"{records[0].label} [{records[0].path}]" if records[0].path else records[0].label
        raise IncomparableError(f"records are not comparable with {ref_label}: "
                                + "; ".join(str(m) for m in mismatches) + f" ({hint})")
    return mismatches

