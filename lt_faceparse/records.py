"""Result records: the one versioned JSON schema for every evaluation (ours and published ones).

A record is ``record.json`` (scores, counts, provenance) plus, for evaluations we ran, a
``per_image.npz`` side file (per image, per class |G|, |P|, |G∩P| and the image names) from which every
score can be recomputed for any subset of images. Scores are fractions in [0, 1]; undefined scores
(a class absent from both ground truth and prediction, or not published) are ``null`` in JSON and
NaN in memory. Writes are atomic; loading validates and names the file in every error.

Reported records (``provenance.reported = true``) hold published numbers: per-class F1 and the
printed means only, no counts, no confusion matrix, no per-image stats.
"""

from __future__ import annotations

import datetime as _dt
import functools
import hashlib
import math
import subprocess
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from lt_faceparse import __version__
from lt_faceparse.analysis.bins import f1_by_bin
from lt_faceparse.atomic import atomic_save_npz, atomic_write_json, read_json
from lt_faceparse.custom_taxonomy import adopt_taxonomy
from lt_faceparse.errors import DataError, IncomparableError
from lt_faceparse.metrics.per_image import PerImageStats
from lt_faceparse.metrics.scores import CONVENTIONS, counts_from_confusion, scores_from_counts
from lt_faceparse.taxonomy import Taxonomy, get_taxonomy

SCHEMA_VERSION = 1

PROVENANCE_KEYS = (
    "model", "backbone", "weights", "dataset", "taxonomy", "split", "merge", "resolution", "protocol",
    "warp", "checkpoint_rule", "pretraining", "num_params", "reported", "source", "library_version",
    "git_commit", "created",
)
# optional provenance keys: "data_format" (dataset format read, e.g. folder) and "data_root"
# (absolute dataset root; `report` reads its example images from there)
COMPARABILITY_KEYS = ("taxonomy", "split", "merge", "protocol")

_SCORE_KEYS = ("f1", "iou", "precision", "recall")
_COUNT_KEYS = ("gt_pixels", "pred_pixels", "intersection")
_MEAN_KEYS = ("mean_f1", "mean_iou_with_bg", "mean_iou_without_bg", "pixel_accuracy")
_REQUIRED = ("schema_version", "taxonomy", "per_class", *_MEAN_KEYS, "num_images", "groups",
             "undefined_classes", "bins", "f1_by_bin", "provenance")


@dataclass
class ResultRecord:
    """Scores and provenance of one evaluation (see module docstring; fields mirror ``record.json``).

    ``per_class``: list (index = class id) of ``{id, name, f1, iou, precision, recall, gt_pixels,
    pred_pixels, intersection}``; ``groups``: ``{name: {members, f1, iou, precision, recall, ...}}``;
    ``bins``: ``{bin: [class names]}`` with ``bins_source`` saying which split's frequencies made them;
    ``f1_by_bin``: ``{bin: mean foreground F1}``; ``ci``: bootstrap intervals (``BootstrapCI.to_dict``);
    ``confusion``: K x K counts (rows = ground truth) or None for reported records;
    ``taxonomy_definition``: the whole taxonomy (``Taxonomy.to_dict``), so reports print its display
    names and colours in any process (None in records written before records held it).
    """

    taxonomy: str
    per_class: list[dict[str, Any]]
    mean_f1: float
    mean_iou_with_bg: float
    mean_iou_without_bg: float
    pixel_accuracy: float
    num_images: int | None
    provenance: dict[str, Any]
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    undefined_classes: list[str] = field(default_factory=list)
    bins: dict[str, list[str]] | None = None
    bins_source: dict[str, Any] | None = None
    f1_by_bin: dict[str, float | None] | None = None
    confusion: list[list[int]] | None = None
    ci: dict[str, Any] | None = None
    taxonomy_definition: dict[str, Any] | None = None
    conventions: dict[str, str] = field(default_factory=lambda: dict(CONVENTIONS))
    schema_version: int = SCHEMA_VERSION
    per_image_file: str | None = None
    path: Path | None = field(default=None, compare=False, repr=False)
    _per_image: PerImageStats | None = field(default=None, compare=False, repr=False)

    # ---- views ---------------------------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        return [c["name"] for c in self.per_class]

    @property
    def reported(self) -> bool:
        return bool(self.provenance.get("reported", False))

    @property
    def label(self) -> str:
        """Short row label: model (backbone) @ resolution, or the file name; then the long-tail
        remedies and post-hoc options, e.g. ``segface (mobilenet) @64 +focal(γ=2) +flip TTA``."""
        p = self.provenance
        parts = [str(p.get("model") or (self.path.parent.name if self.path else "?"))]
        if p.get("backbone"):
            parts.append(f"({p['backbone']})")
        if p.get("resolution"):
            parts.append(f"@{p['resolution']}")
        parts += [f"+{part}" for part in remedy_parts(p)]
        return " ".join(parts)

    def per_class_f1(self) -> dict[str, float]:
        """Class name -> F1 (NaN when undefined or not reported)."""
        return {c["name"]: c["f1"] for c in self.per_class}

    def per_class_iou(self) -> dict[str, float]:
        return {c["name"]: c["iou"] for c in self.per_class}

    def confusion_matrix(self) -> np.ndarray | None:
        return None if self.confusion is None else np.asarray(self.confusion, dtype=np.int64)

    @property
    def per_image(self) -> PerImageStats | None:
        """Per-image stats, read lazily from the npz side file (None for reported records)."""
        if self._per_image is None and self.per_image_file and self.path is not None:
            npz = self.path.parent / self.per_image_file
            if not npz.is_file():
                raise DataError(npz, f"per-image side file of {self.path} is missing")
            stats = PerImageStats.from_npz(npz)
            if stats.num_classes != len(self.per_class) or stats.num_images != self.num_images:
                raise DataError(npz, f"holds {stats.num_images} images x {stats.num_classes} classes, "
                                     f"record {self.path} says {self.num_images} x {len(self.per_class)}")
            if not np.array_equal(stats.gt.sum(0), [c["gt_pixels"] for c in self.per_class]):
                raise DataError(npz, f"per-image counts do not add up to the counts in {self.path}")
            self._per_image = stats
        return self._per_image

    def to_frame(self):
        """Per-class table (pandas), one row per class."""
        import pandas as pd

        return pd.DataFrame(self.per_class)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (NaN -> null)."""
        out = {
            "schema_version": self.schema_version, "taxonomy": self.taxonomy,
            "num_images": self.num_images,
            **{k: getattr(self, k) for k in _MEAN_KEYS},
            "per_class": self.per_class, "groups": self.groups, "undefined_classes": self.undefined_classes,
            "bins": self.bins, "bins_source": self.bins_source, "f1_by_bin": self.f1_by_bin,
            "ci": self.ci, "taxonomy_definition": self.taxonomy_definition,
            "conventions": self.conventions, "provenance": self.provenance,
            "per_image_file": self.per_image_file, "confusion": self.confusion,
        }
        return _nan_to_none(out)

    def with_bins(self, bins: Any) -> "ResultRecord":
        """Copy with ``bins`` (``{bin: [names or ids]}`` or a ``FrequencyTable``, e.g. of the training
        split) and the F1@bin means recomputed from this record's per-class F1."""
        taxonomy = record_taxonomy(self)
        bin_map, source = _bins_arg(bins, taxonomy)
        fg = [taxonomy.names[i] for i in taxonomy.foreground_ids]
        return replace(self, bins=bin_map, bins_source=source, _per_image=self._per_image,
                       f1_by_bin=None if bin_map is None else f1_by_bin(self.per_class_f1(), bin_map, fg))

    def with_bootstrap_ci(self, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0) -> "ResultRecord":
        """Copy with ``ci`` filled from the per-image stats (percentile bootstrap over images)."""
        from lt_faceparse.metrics.bootstrap import bootstrap_ci

        stats = self.per_image
        if stats is None:
            raise ValueError(f"record {self.label!r} has no per-image stats to bootstrap")
        ci = bootstrap_ci(stats, record_taxonomy(self), n_resamples=n_resamples, confidence=confidence, seed=seed)
        return replace(self, ci=ci.to_dict(), _per_image=stats)


def remedy_parts(provenance: Mapping[str, Any]) -> list[str]:
    """Labels of the training remedies (``provenance["longtail"]``) and post-hoc options
    (``provenance["posthoc"]``) of a record; empty for a plain model scored plainly."""
    from lt_faceparse.longtail.spec import PLAIN, posthoc_label, provenance_remedy

    remedy = provenance_remedy(provenance)
    parts = [] if remedy == PLAIN else remedy.split(" + ")
    posthoc = posthoc_label(provenance.get("posthoc"))
    return parts + posthoc.split(" + ") if posthoc else parts


# ------------------------------------------------------------------------------------------------
# building
# ------------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """Commit of the checkout this library runs from (best effort; None outside a git checkout)."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if len(sha) == 40 else None


def make_provenance(provenance: Mapping[str, Any] | None, taxonomy: str, *, reported: bool = False) -> dict[str, Any]:
    """Provenance with every key of :data:`PROVENANCE_KEYS` (unknown ones None) plus library
    version, git commit and creation time; extra keys are kept."""
    given = dict(provenance or {})
    if given.get("taxonomy") not in (None, taxonomy):
        raise ValueError(f"provenance taxonomy {given['taxonomy']!r} differs from the scored taxonomy {taxonomy!r}")
    out = {k: None for k in PROVENANCE_KEYS}
    out.update(given)
    out["taxonomy"] = taxonomy
    out["reported"] = bool(given.get("reported", reported))
    out["library_version"] = out["library_version"] or __version__
    out["git_commit"] = out["git_commit"] or git_commit()
    out["created"] = out["created"] or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return out


def _bins_arg(bins: Any, taxonomy: Taxonomy) -> tuple[dict[str, list[str]] | None, dict | None]:
    """Accept ``{bin: [names or ids]}`` or a FrequencyTable; return (bins by name, source)."""
    if bins is None:
        return None, None
    source = None
    if hasattr(bins, "bins") and callable(bins.bins):  # FrequencyTable
        source = {k: bins.summary.get(k) for k in ("dataset", "split", "merge", "num_images", "thresholds")}
        bins = bins.bins()
    out = {}
    for name, members in dict(bins).items():
        out[name] = [taxonomy.names[m] if isinstance(m, (int, np.integer)) else taxonomy.names[taxonomy.id_of(m)]
                     for m in members]
    return out, source


def build_record(confusion: Any, taxonomy: Taxonomy | str, provenance: Mapping[str, Any] | None,
                 per_image: PerImageStats | None = None, bins: Any = None, *, ci: Any = None,
                 num_images: int | None = None, names: Sequence[str] | None = None) -> ResultRecord:
    """Score a K x K confusion matrix (tensor, array or a computed ``ConfusionMatrix`` metric) into a
    record. ``per_image``: stats from ``ConfusionMatrix.per_image_stats()`` (``names``: image names
    in their row order); ``bins``: ``{bin: [class names or ids]}`` or a ``FrequencyTable``; ``ci``: a
    ``BootstrapCI`` or its dict. ``num_images`` defaults to the number of per-image rows."""
    from lt_faceparse.metrics.confusion import ConfusionMatrix

    taxonomy = get_taxonomy(taxonomy)
    if isinstance(confusion, ConfusionMatrix):
        if per_image is None and confusion.per_image:
            per_image = confusion.per_image_stats()
        confusion = confusion.compute()
    gt, pred, inter = counts_from_confusion(confusion)
    scores = scores_from_counts(gt, pred, inter, taxonomy)
    if per_image is not None:
        if names is not None:
            per_image = per_image.with_names(names)
        if not (np.array_equal(per_image.gt.sum(0), gt) and np.array_equal(per_image.pred.sum(0), pred)
                and np.array_equal(per_image.inter.sum(0), inter)):
            raise ValueError("build_record: per-image stats do not add up to the confusion matrix")
        num_images = per_image.num_images if num_images is None else num_images
        if num_images != per_image.num_images:
            raise ValueError(f"build_record: num_images={num_images} but {per_image.num_images} per-image rows")
    if num_images is None:
        raise ValueError("build_record: pass num_images (or per_image)")
    bin_map, bins_source = _bins_arg(bins, taxonomy)
    fg = [taxonomy.names[i] for i in taxonomy.foreground_ids]
    f1s = {c["name"]: c["f1"] for c in scores["per_class"]}
    if ci is not None and hasattr(ci, "to_dict"):
        ci = ci.to_dict()
    cm = np.asarray(confusion.detach().cpu() if hasattr(confusion, "detach") else confusion, dtype=np.int64)
    record = ResultRecord(
        taxonomy=taxonomy.name, per_class=scores["per_class"],
        **{k: scores[k] for k in _MEAN_KEYS}, num_images=int(num_images),
        provenance=make_provenance(provenance, taxonomy.name), groups=scores["groups"],
        undefined_classes=scores["undefined_classes"], bins=bin_map, bins_source=bins_source,
        f1_by_bin=None if bin_map is None else f1_by_bin(f1s, bin_map, fg), confusion=cm.tolist(),
        ci=ci, taxonomy_definition=taxonomy.to_dict(), conventions=scores["conventions"], _per_image=per_image,
    )
    validate_record_dict(record.to_dict(), "<built record>")
    return record


def reported_record(method: str, per_class_f1: Mapping[str, float | None], mean_f1: float | None,
                    mean_iou: float | None, provenance: Mapping[str, Any] | None, *,
                    taxonomy: Taxonomy | str | None = None, mean_iou_convention: str = "with_bg",
                    num_images: int | None = None, bins: Any = None) -> ResultRecord:
    """A record of published numbers (fractions, not percent). ``per_class_f1`` maps class names or
    display names (e.g. ``"L-Eye"``) to F1; classes not listed stay NaN. ``mean_iou`` is stored under
    the convention the source used (``with_bg`` as SegFace and DML-CSR, or ``without_bg``). Means are
    kept as printed (not recomputed from the rounded per-class values)."""
    prov = dict(provenance or {})
    taxonomy = get_taxonomy(taxonomy if taxonomy is not None else prov.get("taxonomy"))
    if mean_iou_convention not in ("with_bg", "without_bg"):
        raise ValueError(f"mean_iou_convention must be 'with_bg' or 'without_bg', got {mean_iou_convention!r}")
    f1 = [math.nan] * taxonomy.num_classes
    for name, value in per_class_f1.items():
        cid = taxonomy.id_of(name)
        f1[cid] = math.nan if value is None else float(value)
    for what, v in [*((f"F1 of {taxonomy.names[i]}", x) for i, x in enumerate(f1)),
                    ("mean F1", mean_f1), ("mean IoU", mean_iou)]:
        if v is not None and not math.isnan(v) and not 0.0 <= v <= 1.0:
            raise ValueError(f"reported_record({method!r}): {what} = {v} is not a fraction in [0, 1] "
                             "(records store fractions; divide percent by 100)")
    prov.setdefault("model", method)
    nan = math.nan
    per_class = [{"id": i, "name": n, "f1": f1[i], "iou": nan, "precision": nan, "recall": nan,
                  "gt_pixels": None, "pred_pixels": None, "intersection": None}
                 for i, n in enumerate(taxonomy.names)]
    bin_map, bins_source = _bins_arg(bins, taxonomy)
    fg = [taxonomy.names[i] for i in taxonomy.foreground_ids]
    iou = nan if mean_iou is None else float(mean_iou)
    record = ResultRecord(
        taxonomy=taxonomy.name, per_class=per_class,
        mean_f1=nan if mean_f1 is None else float(mean_f1),
        mean_iou_with_bg=iou if mean_iou_convention == "with_bg" else nan,
        mean_iou_without_bg=iou if mean_iou_convention == "without_bg" else nan,
        pixel_accuracy=nan, num_images=num_images,
        provenance=make_provenance(prov, taxonomy.name, reported=True), bins=bin_map, bins_source=bins_source,
        f1_by_bin=None if bin_map is None else f1_by_bin({n: f1[i] for i, n in enumerate(taxonomy.names)}, bin_map, fg),
        taxonomy_definition=taxonomy.to_dict(),
        conventions={**CONVENTIONS, "source": "published numbers as printed by the cited source"},
    )
    record.provenance["reported"] = True
    validate_record_dict(record.to_dict(), "<reported record>")
    return record


# ------------------------------------------------------------------------------------------------
# saving, loading, validation
# ------------------------------------------------------------------------------------------------

def _nan_to_none(obj: Any) -> Any:
    if isinstance(obj, float):
        return None if math.isnan(obj) else obj
    if isinstance(obj, (np.floating,)):
        return None if np.isnan(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_nan_to_none(v) for v in obj]
    return obj


def _paths(path: str | Path) -> tuple[Path, Path]:
    path = Path(path)
    if path.suffix.lower() != ".json":
        return path / "record.json", path / "per_image.npz"
    npz = "per_image.npz" if path.name == "record.json" else f"{path.stem}.per_image.npz"
    return path, path.parent / npz


def save_record(record: ResultRecord, out: str | Path) -> Path:
    """Write ``record.json`` (+ ``per_image.npz`` when the record has per-image stats) atomically.
    ``out`` is a folder or a ``.json`` path (side file ``<stem>.per_image.npz`` then). Returns the
    JSON path."""
    json_path, npz_path = _paths(out)
    stats = record.per_image if record.path is not None else record._per_image
    data = record.to_dict()
    if stats is not None:
        buf_arrays = stats.to_arrays()
        atomic_save_npz(npz_path, **buf_arrays)
        data["per_image_file"] = npz_path.name
        data["per_image_sha256"] = hashlib.sha256(npz_path.read_bytes()).hexdigest()
    else:
        data["per_image_file"] = None
    validate_record_dict(data, json_path)
    atomic_write_json(json_path, data)
    record.path, record.per_image_file, record._per_image = json_path, data["per_image_file"], stats
    return json_path


def _is_fraction(v: Any) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0)


def _is_count(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def validate_record_dict(data: Any, path: str | Path) -> None:
    """Raise :class:`DataError` naming ``path`` unless ``data`` is a valid record of this schema."""
    def fail(problem: str):
        raise DataError(path, f"invalid result record: {problem}")

    if not isinstance(data, dict):
        fail("top level is not a JSON object")
    if data.get("schema_version") != SCHEMA_VERSION:
        fail(f"schema_version {data.get('schema_version')!r}; this library reads version {SCHEMA_VERSION}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        fail(f"missing keys {missing}")
    prov = data["provenance"]
    if not isinstance(prov, dict):
        fail("provenance is not an object")
    missing = [k for k in PROVENANCE_KEYS if k not in prov]
    if missing:
        fail(f"provenance lacks keys {missing}")
    if not isinstance(prov["reported"], bool):
        fail("provenance.reported must be true or false")
    if prov["taxonomy"] != data["taxonomy"]:
        fail(f"provenance.taxonomy {prov['taxonomy']!r} != taxonomy {data['taxonomy']!r}")
    reported = prov["reported"]
    per_class = data["per_class"]
    if not isinstance(per_class, list) or not per_class:
        fail("per_class must be a non-empty list")
    for i, row in enumerate(per_class):
        if not isinstance(row, dict) or row.get("id") != i or not isinstance(row.get("name"), str):
            fail(f"per_class[{i}] must be an object with id {i} and a name")
        for k in _SCORE_KEYS:
            if k not in row or not _is_fraction(row[k]):
                fail(f"per_class[{i}] ({row['name']}): {k} = {row.get(k)!r} is not a fraction in [0, 1] or null")
        for k in _COUNT_KEYS:
            if k not in row or not (_is_count(row[k]) or (reported and row[k] is None)):
                fail(f"per_class[{i}] ({row['name']}): {k} = {row.get(k)!r} is not a pixel count")
    for k in _MEAN_KEYS:
        if not _is_fraction(data[k]):
            fail(f"{k} = {data[k]!r} is not a fraction in [0, 1] or null")
    if not (_is_count(data["num_images"]) or (reported and data["num_images"] is None)):
        fail(f"num_images = {data['num_images']!r} is not a count")
    for gname, g in data["groups"].items():
        if not isinstance(g, dict) or not _is_fraction(g.get("f1")) or not _is_fraction(g.get("iou")):
            fail(f"group {gname!r} lacks fractions f1/iou")
    names = [r["name"] for r in per_class]
    definition = data.get("taxonomy_definition")
    if definition is not None:
        if not isinstance(definition, dict) or definition.get("name") != data["taxonomy"]:
            fail(f"taxonomy_definition must be the definition of taxonomy {data['taxonomy']!r}")
        stored = [c.get("name") if isinstance(c, dict) else None for c in definition.get("classes") or []]
        if stored != names:
            fail(f"taxonomy_definition lists classes {stored}, per_class {names}")
    if not set(data["undefined_classes"]) <= set(names):
        fail(f"undefined_classes {data['undefined_classes']} name unknown classes")
    if data["bins"] is not None:
        for b, members in data["bins"].items():
            if not set(members) <= set(names):
                fail(f"bin {b!r} names unknown classes {sorted(set(members) - set(names))}")
    if data["f1_by_bin"] is not None and not all(_is_fraction(v) for v in data["f1_by_bin"].values()):
        fail("f1_by_bin values must be fractions or null")
    cm = data.get("confusion")
    if cm is not None:
        k = len(per_class)
        if not (isinstance(cm, list) and len(cm) == k and all(isinstance(r, list) and len(r) == k for r in cm)
                and all(_is_count(v) for r in cm for v in r)):
            fail(f"confusion must be a {k} x {k} matrix of counts")
        arr = np.asarray(cm, dtype=np.int64)
        if arr.sum(1).tolist() != [r["gt_pixels"] for r in per_class] or \
                np.diagonal(arr).tolist() != [r["intersection"] for r in per_class]:
            fail("confusion matrix does not match the per-class counts")
    elif not reported:
        fail("a record of our own evaluation must hold its confusion matrix")


def _none_to_nan(data: dict[str, Any]) -> dict[str, Any]:
    nan = math.nan
    for row in data["per_class"]:
        for k in _SCORE_KEYS:
            row[k] = nan if row[k] is None else float(row[k])
    for k in _MEAN_KEYS:
        data[k] = nan if data[k] is None else float(data[k])
    for g in data["groups"].values():
        for k in _SCORE_KEYS:
            if k in g:
                g[k] = nan if g[k] is None else float(g[k])
    return data


def load_record(path: str | Path) -> ResultRecord:
    """Read and validate a record (a ``.json`` file or a folder holding ``record.json``). Per-image
    stats are read lazily on first access of ``record.per_image``."""
    json_path, _ = _paths(path)
    data = read_json(json_path, "result record")
    validate_record_dict(data, json_path)
    data = _none_to_nan(data)
    npz_name = data.get("per_image_file")
    if npz_name is not None and not (json_path.parent / npz_name).is_file():
        raise DataError(json_path.parent / npz_name, f"per-image side file named by {json_path} is missing")
    if npz_name is not None and data.get("per_image_sha256"):
        digest = hashlib.sha256((json_path.parent / npz_name).read_bytes()).hexdigest()
        if digest != data["per_image_sha256"]:
            raise DataError(json_path.parent / npz_name, f"does not match the checksum recorded in {json_path}")
    fields = {k: data.get(k) for k in ("taxonomy", "per_class", *_MEAN_KEYS, "num_images", "provenance", "groups",
                                       "undefined_classes", "bins", "bins_source", "f1_by_bin", "confusion",
                                       "ci", "taxonomy_definition", "schema_version", "per_image_file")}
    fields["conventions"] = data.get("conventions") or dict(CONVENTIONS)
    if fields["taxonomy_definition"] is not None:
        adopt_taxonomy(fields["taxonomy_definition"], json_path)  # registered: get_taxonomy(name) works from here
    return ResultRecord(**fields, path=json_path)


def record_taxonomy(record: ResultRecord) -> Taxonomy:
    """The taxonomy of a record: the definition it stores (checked against the built-in or registered
    one of that name), else the registered taxonomy of its name, else (records written
    before records held their taxonomy) one built from its class names, whose display names are then
    the class names themselves."""
    if record.taxonomy_definition is not None:
        return adopt_taxonomy(record.taxonomy_definition, record.path, register=False)
    try:
        tax = get_taxonomy(record.taxonomy)
    except KeyError:
        from lt_faceparse.custom_taxonomy import taxonomy_from_names

        return taxonomy_from_names(record.taxonomy, record.class_names)
    if tax.names != record.class_names:
        raise DataError(record.path, f"class names differ from the registered taxonomy {tax.name!r}")
    return tax


# ------------------------------------------------------------------------------------------------
# comparability
# ------------------------------------------------------------------------------------------------

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
                     keys: Sequence[str] = COMPARABILITY_KEYS) -> list[Mismatch]:
    """Compare every record with the first on taxonomy, split, merge preset and protocol.

    Raises :class:`IncomparableError` listing the differences unless ``force``; with ``force`` the
    list of :class:`Mismatch` is returned (empty when all agree) so tables can mark those rows."""
    mismatches = []
    if records:
        ref = records[0].provenance
        for i, rec in enumerate(records[1:], start=1):
            label = f"{rec.label} [{rec.path}]" if rec.path else rec.label
            for k in keys:
                if rec.provenance.get(k) != ref.get(k):
                    mismatches.append(Mismatch(k, i, label, rec.provenance.get(k), ref.get(k)))
    if mismatches and not force:
        ref_label = f"{records[0].label} [{records[0].path}]" if records[0].path else records[0].label
        raise IncomparableError(f"records are not comparable with {ref_label}: "
                                + "; ".join(str(m) for m in mismatches) + " (pass force=True to compare anyway)")
    return mismatches
