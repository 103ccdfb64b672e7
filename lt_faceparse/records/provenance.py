"""Typed provenance of a result record: every key a writer may store, with its type and meaning.

:data:`PROVENANCE_KEYS` are written into every record (``null`` when unknown). The other keys are
written when a writer set them (also when it set them to ``null``), so a record holds exactly what its
writer said, as records have since schema version 1. Reading rejects a key this class does not declare
and a value of the wrong type, with one line naming the file.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import functools
import subprocess
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from lt_faceparse import __version__
from lt_faceparse.errors import DataError

PROVENANCE_KEYS = (
    "model", "backbone", "weights", "dataset", "taxonomy", "split", "merge", "resolution", "protocol",
    "warp", "checkpoint_rule", "pretraining", "num_params", "reported", "source", "library_version",
    "git_commit", "created",
)
COMPARABILITY_KEYS = ("taxonomy", "split", "merge", "protocol")


@dataclass(frozen=True)
class Provenance:
    """Where the numbers of one record come from (``record.json`` → ``provenance``)."""

    # ---- written into every record (PROVENANCE_KEYS) ----
    model: str | None = None
    """Registered model name (``segface``, ``fcn`` ...) or a published method's model."""
    backbone: str | None = None
    """Backbone name as given to the model (e.g. ``timm/mobilenetv3_large_100``)."""
    weights: str | None = None
    """Weight file that was scored (or the folder of scored prediction PNGs)."""
    dataset: str | None = None
    """Dataset the split belongs to (for generated data: the dataset it imitates, e.g. ``synthface-lt``)."""
    taxonomy: str | None = None
    """Name of the taxonomy the classes are scored in (always equals the record's ``taxonomy``)."""
    split: str | None = None
    """Scored split (``val``, ``test`` ...)."""
    merge: str | None = None
    """Merge preset of the labels; null for data whose labels are stored merged."""
    resolution: int | None = None
    """Network input resolution in pixels."""
    protocol: str | None = None
    """Scoring protocol (``input`` or ``native``; see :mod:`lt_faceparse.metrics.protocol`)."""
    warp: str | None = None
    """Warp the model ran inside (``tanh``: RoI tanh-warp), or null."""
    checkpoint_rule: str | None = None
    """How the scored checkpoint was chosen (``last epoch``, ``best on test`` ...)."""
    pretraining: str | None = None
    """Pretraining of the backbone (``imagenet``, ``none`` ...)."""
    num_params: int | None = None
    """Number of model parameters."""
    reported: bool = False
    """True for published numbers (no counts, no confusion matrix), false for our evaluations."""
    source: str | None = None
    """Who made the weights or numbers (``trained with lt-faceparse 0.1.0``, a citation ...)."""
    library_version: str | None = None
    """lt-faceparse version that wrote the record."""
    git_commit: str | None = None
    """Commit of the checkout that wrote the record (null outside a git checkout)."""
    created: str | None = None
    """UTC time the record was built (ISO 8601, seconds)."""

    # ---- written when a writer set them ----
    data_format: str | None = None
    """Dataset format that was read (``celebamask-hq``, ``lapa``, ``folder`` ...)."""
    data_root: str | None = None
    """Absolute dataset root (``report`` reads its example images from there)."""
    protocol_description: str | None = None
    """The scoring protocol in words."""
    epochs: int | None = None
    """Training epochs of the scored weights."""
    longtail: dict[str, Any] | None = None
    """Training remedies (``LongtailSetup.describe()``: ``label``, loss, sampler, copy-paste, priors ...)."""
    posthoc: dict[str, Any] | None = None
    """Post-hoc options applied when scoring (``logit_adjust``, ``tta``, ``priors``, ``prior_unit``)."""
    remedy: str | None = None
    """Short remedy name a sweep or benchmark setting gave the record (``copy_paste``, ``flip_tta`` ...)."""
    run: str | None = None
    """Run folder name of a sweep or benchmark setting."""
    label: str | None = None
    """Row name to print instead of the record's own label (published rows)."""
    method: str | None = None
    """Published method name (``SegFace``, ``DML-CSR`` ...)."""
    params_m: float | None = None
    """Published number of parameters, in millions."""
    fps: float | None = None
    """Published frames per second (the paper's hardware)."""
    table: str | None = None
    """Published table the row comes from."""
    venue: str | None = None
    """Venue of the published method."""
    published_id: str | None = None
    """Id of the published row (``1b/segface-512`` ...)."""
    mean_iou_convention: str | None = None
    """Whether the published mean IoU counts the background (``with_bg``) or not (``without_bg``)."""
    approximate: bool | None = None
    """True when the published numbers were read off a figure."""
    notes: str | None = None
    """Remarks on a published row."""
    gt_dir: str | None = None
    """Ground-truth label folder of scored prediction PNGs."""
    pred_numbering: str | None = None
    """Class numbering of the scored prediction PNGs."""
    gt_numbering: str | None = None
    """Class numbering of the ground-truth label PNGs."""
    licence: dict[str, Any] | None = None
    """Terms of use of a released model's weights and training data (:mod:`lt_faceparse.zoo`)."""
    zoo_model: str | None = None
    """Registered name of the released model that was scored (``segface/swinb_celeba_512`` ...)."""
    speed: dict[str, Any] | None = None
    """Speed of the scored model on the scoring machine (``zoo eval``: latency, images/s, device)."""

    _written: tuple[str, ...] = field(default=(), compare=False, repr=False)
    """The other keys in the order the writer gave them (written in that order, also when null)."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: str | Path | None = None) -> "Provenance":
        """Provenance from its JSON object; :class:`DataError` naming ``path`` for an unknown key or a
        value of the wrong type."""
        unknown = sorted(set(data) - set(_TYPES))
        if unknown:
            raise DataError(path, f"provenance has unknown keys {unknown} (known: {sorted(_TYPES)})")
        for key, value in data.items():
            if not _has_type(value, _TYPES[key]):
                raise DataError(path, f"provenance.{key} = {value!r} is not {_type_text(_TYPES[key])}")
        longtail = data.get("longtail")
        if longtail is not None and not isinstance(longtail.get("label"), str):
            raise DataError(path, "provenance.longtail lacks the label of its remedies")
        return cls(**dict(data), _written=tuple(k for k in data if k not in PROVENANCE_KEYS))

    def to_dict(self) -> dict[str, Any]:
        """JSON object: every key of :data:`PROVENANCE_KEYS`, then the others the writer gave, then any
        other that is set."""
        out = {k: getattr(self, k) for k in PROVENANCE_KEYS}
        out.update((k, getattr(self, k)) for k in self._written)
        out.update((k, getattr(self, k)) for k in _OPTIONAL_KEYS if k not in out and getattr(self, k) is not None)
        return out

    def replace(self, **changes: Any) -> "Provenance":
        """Copy with ``changes`` (checked like :meth:`from_dict`)."""
        return Provenance.from_dict({**self.to_dict(), **changes})


_HINTS = typing.get_type_hints(Provenance)
_TYPES: dict[str, Any] = {f.name: _HINTS[f.name] for f in dataclasses.fields(Provenance) if not f.name.startswith("_")}
_OPTIONAL_KEYS = tuple(k for k in _TYPES if k not in PROVENANCE_KEYS)


def _runtime_types(hint: Any) -> tuple[type, ...]:
    args = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    return tuple(typing.get_origin(a) or a for a in args)


def _has_type(value: Any, hint: Any) -> bool:
    allowed = _runtime_types(hint)
    if isinstance(value, bool):
        return bool in allowed
    if isinstance(value, int) and float in allowed:
        return True
    return isinstance(value, allowed)


def _type_text(hint: Any) -> str:
    names = {type(None): "null", str: "a string", int: "an integer", float: "a number", bool: "true or false",
             dict: "an object"}
    return " or ".join(names.get(t, t.__name__) for t in _runtime_types(hint))


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """Commit of the checkout this library runs from (best effort; None outside a git checkout)."""
    root = Path(__file__).resolve().parent.parent.parent
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if len(sha) == 40 else None


def make_provenance(provenance: Mapping[str, Any] | Provenance | None, taxonomy: str, *,
                    reported: bool = False) -> Provenance:
    """Provenance with every key of :data:`PROVENANCE_KEYS` (unknown ones None) plus library
    version, git commit and creation time; the other declared keys are kept."""
    given = provenance.to_dict() if isinstance(provenance, Provenance) else dict(provenance or {})
    if given.get("taxonomy") not in (None, taxonomy):
        raise ValueError(f"provenance taxonomy {given['taxonomy']!r} differs from the scored taxonomy {taxonomy!r}")
    out = {k: None for k in PROVENANCE_KEYS}
    out.update((k, v.item() if isinstance(v, np.generic) else v) for k, v in given.items())  # as JSON stores them
    out["taxonomy"] = taxonomy
    out["reported"] = bool(given.get("reported", reported))
    out["library_version"] = out["library_version"] or __version__
    out["git_commit"] = out["git_commit"] or git_commit()
    out["created"] = out["created"] or _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    return Provenance.from_dict(out, "<provenance>")
