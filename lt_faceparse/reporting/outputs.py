"""What a report run produces (:class:`ReportOutputs`) and the captions its files share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from lt_faceparse.records import provenance_of, record_label, record_merge_text
from lt_faceparse.reporting.leaderboard import Leaderboard


@dataclass
class ReportOutputs:
    """What a report run produced: files by name, the records it read and numbers for the README."""

    out_dir: Path
    files: dict[str, list[Path]] = field(default_factory=dict)
    records: list[Any] = field(default_factory=list)
    leaderboard: Leaderboard | None = None
    sweep_rows: list[dict] = field(default_factory=list)
    speed_records: list[dict] = field(default_factory=list)
    frequency: Any = None
    tail_destinations: dict[str, dict] = field(default_factory=dict)
    longtail: list[Any] = field(default_factory=list)  # reporting.longtail.LongTailAnalysis per comparison
    skipped: list[str] = field(default_factory=list)

    def add(self, name: str, paths: Any) -> None:
        values = list(paths.values()) if isinstance(paths, dict) else list(paths)
        self.files.setdefault(name, []).extend(Path(p) for p in values)


def data_caption(records: Sequence[Any]) -> str:
    """One sentence naming data, split, protocol, resolution(s) and taxonomy of ``records``."""
    if not records:
        return ""
    prov = provenance_of(records[0])
    fmt = prov.data_format
    resolutions = sorted({int(provenance_of(r).resolution) for r in records if provenance_of(r).resolution})
    res_text = ", ".join(f"{r} px" for r in resolutions) or "unknown resolution"
    images = records[0].num_images
    return (f"Data: {prov.dataset}"
            + (f" ({fmt} format)" if fmt and fmt != prov.dataset else "")
            + f", {prov.split} split"
            + (f" ({images} images)" if images else "")
            + f", taxonomy {records[0].taxonomy}, merge preset {record_merge_text(records[0])}; "
            f"scoring protocol '{prov.protocol}' at the network input resolution ({res_text}).")


def models_caption(records: Sequence[Any]) -> str:
    parts = []
    for r in records:
        prov = provenance_of(r)
        epochs = f", {prov.epochs} epochs" if prov.epochs else ""
        parts.append(f"{record_label(r)} (pretraining {prov.pretraining}, checkpoint {prov.checkpoint_rule}"
                     f"{epochs})")
    return "Models: " + "; ".join(parts) + "."
