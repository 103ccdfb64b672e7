"""Per-image, per-class pixel counts: enough to recompute every score for any subset of images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from lt_faceparse.errors import DataError


@dataclass(frozen=True)
class PerImageStats:
    """Counts of one scored split, one row per image (rows sorted by ``image_ids``).

    gt:        N x K int64, |G| = ground-truth pixels of class k in image n (ignore excluded)
    pred:      N x K int64, |P| = predicted pixels of class k on the non-ignored pixels of image n
    inter:     N x K int64, |G ∩ P|
    image_ids: N int64, dataset indices (unique)
    names:     N image names, or None when unknown
    """

    gt: np.ndarray
    pred: np.ndarray
    inter: np.ndarray
    image_ids: np.ndarray
    names: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        n, k = self.gt.shape
        if self.pred.shape != (n, k) or self.inter.shape != (n, k):
            raise ValueError(f"per-image stats: shapes differ: gt {self.gt.shape}, pred "
                             f"{self.pred.shape}, inter {self.inter.shape}")
        if self.image_ids.shape != (n,):
            raise ValueError(f"per-image stats: {self.image_ids.shape[0]} image ids for {n} rows")
        if self.names is not None and len(self.names) != n:
            raise ValueError(f"per-image stats: {len(self.names)} names for {n} rows")
        if len(np.unique(self.image_ids)) != n:
            raise ValueError("per-image stats: duplicated image ids")
        if (self.inter > np.minimum(self.gt, self.pred)).any() or (self.gt < 0).any() or (self.pred < 0).any():
            raise ValueError("per-image stats: counts must satisfy 0 <= |G∩P| <= min(|G|, |P|)")

    @property
    def num_images(self) -> int:
        return self.gt.shape[0]

    @property
    def num_classes(self) -> int:
        return self.gt.shape[1]

    def __len__(self) -> int:
        return self.num_images

    def totals(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Split-level (|G|, |P|, |G∩P|) per class: the confusion matrix's row sums, column sums
        and diagonal."""
        return self.gt.sum(0), self.pred.sum(0), self.inter.sum(0)

    def subset(self, rows: Sequence[int] | np.ndarray) -> "PerImageStats":
        """The stats of a subset of rows (positions, or a boolean mask)."""
        rows = np.asarray(rows)
        names = None if self.names is None else tuple(np.asarray(self.names, dtype=object)[rows])
        return PerImageStats(self.gt[rows], self.pred[rows], self.inter[rows], self.image_ids[rows], names)

    def with_names(self, names: Sequence[str]) -> "PerImageStats":
        return PerImageStats(self.gt, self.pred, self.inter, self.image_ids, tuple(str(n) for n in names))

    def key(self) -> np.ndarray:
        """What identifies the images: names when known, else ids."""
        return np.asarray(self.names if self.names is not None else self.image_ids)

    # ---- npz side file -------------------------------------------------------------------------
    def to_arrays(self) -> dict[str, np.ndarray]:
        arrays = {"gt": self.gt, "pred": self.pred, "inter": self.inter, "image_ids": self.image_ids}
        if self.names is not None:
            arrays["names"] = np.asarray(self.names, dtype=str)
        return arrays

    @classmethod
    def from_npz(cls, path: str | Path) -> "PerImageStats":
        """Load from an ``.npz`` written by :meth:`to_arrays` (no pickled objects are read)."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as z:
                missing = {"gt", "pred", "inter", "image_ids"} - set(z.files)
                if missing:
                    raise DataError(path, f"per-image stats lack arrays {sorted(missing)}")
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError) as err:
            if isinstance(err, DataError):
                raise
            raise DataError(path, f"cannot read per-image stats: {err}") from err
        names = tuple(str(n) for n in arrays["names"]) if "names" in arrays else None
        try:
            return cls(arrays["gt"].astype(np.int64), arrays["pred"].astype(np.int64),
                       arrays["inter"].astype(np.int64), arrays["image_ids"].astype(np.int64), names)
        except ValueError as err:
            raise DataError(path, str(err)) from err
