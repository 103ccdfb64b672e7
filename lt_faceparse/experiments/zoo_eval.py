"""``zoo eval``: re-score every released model of a dataset under one protocol, resumably.

Each model matching the pattern is fetched (:func:`lt_faceparse.zoo.pretrained_weights`), timed on
this machine (:func:`lt_faceparse.speed.measure_speed`, batch 1) and scored by the one evaluation
path, :func:`lt_faceparse.engine.evaluate.evaluate_checkpoint`, with the same split, merge preset
and scoring protocol for all, and bootstrap intervals. Its record (the licence terms, the zoo name
and the speed in its provenance) goes to ``OUT/<model>/``; a model whose record is there already is
not scored again, and a record made under another protocol stops the run rather than mix the two.
The leaderboard (:mod:`lt_faceparse.reporting.zoo_tables`) is rewritten from all records at the end.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lt_faceparse.engine.evaluate import evaluate_checkpoint
from lt_faceparse.errors import DataError
from lt_faceparse.records import ResultRecord, load_record
from lt_faceparse.reporting.zoo_tables import write_zoo_leaderboard
from lt_faceparse.speed.harness import measure_speed
from lt_faceparse.taxonomy import get_taxonomy
from lt_faceparse.weights import load_model
from lt_faceparse.zoo import ZooEntry, pretrained_weights, zoo_entries

SPEED_WARMUP = 2


@dataclass
class ZooEvalResult:
    """What a ``zoo eval`` run did: models scored now, found scored, not obtainable; tables written."""

    scored: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    tables: list[Path] = field(default_factory=list)
    records: list[tuple[ZooEntry, ResultRecord]] = field(default_factory=list)


def default_merge(dataset: str) -> str | None:
    """The one merge preset of a re-scoring run: the release's ``segface`` order for CelebAMask-HQ."""
    return "segface" if dataset == "celebamask-hq" else None


def record_dir(out_dir: Path, entry: ZooEntry) -> Path:
    """Folder of one model's record under ``out_dir`` (``segface/swinb_celeba_512`` -> ``segface--swinb_celeba_512``)."""
    return out_dir / entry.name.replace("/", "--")


def finished_record(folder: Path, wanted: dict[str, Any]) -> ResultRecord | None:
    """The record in ``folder`` when there is one; a DataError when it was made under another protocol."""
    if not (folder / "record.json").is_file():
        return None
    record = load_record(folder)
    differ = {k: (getattr(record.provenance, k), v) for k, v in wanted.items() if getattr(record.provenance, k) != v}
    if differ:
        detail = ", ".join(f"{k} {old!r} (now {new!r})" for k, (old, new) in differ.items())
        raise DataError(folder / "record.json", f"was scored under another protocol: {detail}; re-scoring must use "
                                                "one protocol for all: pass another --out or the same settings")
    return record


def speed_on_this_machine(weights: Path, resolution: int, device: str, runs: int) -> dict[str, Any]:
    """Batch-1 fp32 latency of the model of ``weights`` at ``resolution`` (see :mod:`lt_faceparse.speed`)."""
    model, _ = load_model(weights, map_location=device)
    result = measure_speed(model, resolution, 1, device, warmup=SPEED_WARMUP, runs=runs, flops=False)
    keep = ("images_per_s", "latency_ms_median", "latency_ms_iqr", "batch_size", "dtype", "warmup", "runs",
            "device", "device_name", "num_threads", "resolution")
    return {k: result[k] for k in keep}


def _resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def zoo_eval(dataset: str, root: str | Path, out_dir: str | Path | None = None, *, models: str | None = None,
             split: str = "test", protocol: str = "native", merge: str | None = None, batch_size: int = 8,
             device: str = "auto", num_workers: int = 0, n_resamples: int = 1000, seed: int = 0,
             speed_runs: int = 5) -> ZooEvalResult:
    """Re-score the released models of ``dataset`` (those matching ``models``, a shell pattern such as
    ``"segface/swinb_*"``) on ``split`` of the tree at ``root``; write records and the leaderboard to
    ``out_dir`` (default ``zoo_eval/<dataset>``). ``protocol``: ``native`` (default: every model scored
    against the labels at their original size, so models of different input resolutions compare) or
    ``input`` (the release's: at each model's input resolution). ``merge`` defaults to
    :func:`default_merge`. A model whose file cannot be obtained is reported, and the others go on.
    """
    dataset = get_taxonomy(dataset).name
    entries = zoo_entries(models, dataset=dataset)
    if not entries:
        raise KeyError(f"no released model of {dataset} matches {models or '*'} (lt-faceparse zoo list)")
    out_dir = Path(out_dir) if out_dir is not None else Path("zoo_eval") / dataset
    merge = merge if merge is not None else default_merge(dataset)
    device = _resolve_device(device)
    wanted = {"data_format": dataset, "split": split, "merge": merge, "protocol": protocol,
              "data_root": str(Path(root).resolve())}
    result = ZooEvalResult()
    for number, entry in enumerate(entries, 1):
        folder = record_dir(out_dir, entry)
        record = finished_record(folder, wanted)
        if record is not None:
            result.skipped.append(entry.name)
        else:
            try:
                weights = pretrained_weights(entry.name)
            except DataError as err:
                result.unavailable[entry.name] = str(err)
                continue
            _note(f"[{number}/{len(entries)}] {entry.name}: timing, then scoring {split} of {root}")
            speed = speed_on_this_machine(weights, entry.resolution, device, speed_runs)
            record = evaluate_checkpoint(
                weights, dataset, root, split, protocol, folder, merge=merge, batch_size=batch_size, device=device,
                num_workers=num_workers, n_resamples=n_resamples, seed=seed,
                provenance={"zoo_model": entry.name, "speed": speed, "licence": entry.licence.to_dict()})
            result.scored.append(entry.name)
        result.records.append((entry, record))
    if not result.records:
        first = next(iter(result.unavailable.values()))
        raise DataError(None, f"no released model could be scored; {first}")
    result.tables = write_zoo_leaderboard(result.records, out_dir)
    return result


def _note(text: str) -> None:
    print(text, file=sys.stderr)
