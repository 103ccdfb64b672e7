"""One confusion matrix over a whole split, accumulated on the device with one bincount per batch.

Scores are computed from the split-level matrix (SegFace's release, DML-CSR, mmsegmentation), never
as a mean of per-image scores. Per-image counts (|G|, |P|, |G∩P| per class) are kept as well, so any
subset of images can be re-scored (bootstrap intervals, paired tests) without a second pass.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
from torchmetrics import Metric
from torchmetrics.utilities.data import dim_zero_cat
from torchmetrics.utilities.distributed import gather_all_tensors

from lt_faceparse.metrics.per_image import PerImageStats
from lt_faceparse.taxonomy import IGNORE_INDEX


def _min_max(x: torch.Tensor) -> tuple[int, int]:
    """(min, max) of an integer tensor (numpy's reductions on CPU: faster than torch's there)."""
    if x.device.type == "cpu":
        a = x.numpy()
        return int(a.min()), int(a.max())
    lo, hi = torch.aminmax(x)
    return int(lo), int(hi)


class ConfusionMatrix(Metric):
    """K x K pixel confusion matrix (rows = ground truth, columns = prediction), ignore pixels skipped.

    ``update(preds, target, image_ids=None)``: ``preds`` is B x H x W class ids or B x K x H x W
    logits/scores (argmax over dim 1), ``target`` B x H x W ids with ``ignore_index`` for unlabeled
    pixels. Each batch costs one bincount (on the tensors' device) over ``(target * B + b) * K + pred``,
    which yields every image's own K x K matrix at once; the ignore row is dropped from the
    histogram instead of masking pixels.

    With ``per_image=True`` the per-image matrices are the state (list state, ``cat``-reduced together
    with the image ids), and :meth:`compute` sums them over *unique* image ids: samples that a
    ``DistributedSampler`` pads onto several ranks are counted once. Pass the dataset indices as
    ``image_ids`` (``Batch.indices``); they are required when running distributed. With
    ``per_image=False`` only the K x K sum is kept (``sum``-reduced; padded duplicates count twice).
    """

    is_differentiable = False
    higher_is_better = None
    full_state_update = False

    def __init__(self, num_classes: int, ignore_index: int = IGNORE_INDEX, per_image: bool = True,
                 validate_args: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0 < num_classes <= 255:
            raise ValueError(f"num_classes must be in 1..255 (label maps are 8-bit), got {num_classes}")
        if not num_classes <= ignore_index <= 255:
            raise ValueError(f"ignore_index must lie in {num_classes}..255 (an 8-bit id that is no class), "
                             f"got {ignore_index}")
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.per_image = per_image
        self.validate_args = validate_args
        k = num_classes
        if per_image:
            # flattened (n * K * K) per-image matrices and their image ids; 1-D so ranks holding
            # different numbers of images gather cleanly
            self.add_state("image_confmat", default=[], dist_reduce_fx="cat")
            self.add_state("image_ids", default=[], dist_reduce_fx="cat")
        else:
            self.add_state("confmat", default=torch.zeros(k * k, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor, image_ids: torch.Tensor | None = None) -> None:
        k = self.num_classes
        from_logits = preds.ndim == target.ndim + 1
        if from_logits:
            preds = preds.argmax(1)  # B x K x H x W -> B x H x W, ids in 0..K-1 by construction
        if preds.shape != target.shape or target.ndim < 2:
            raise ValueError(f"ConfusionMatrix.update: preds {tuple(preds.shape)} (after argmax) and target "
                             f"{tuple(target.shape)} must both be B x H x W")
        if preds.is_floating_point() or target.is_floating_point():
            raise ValueError("ConfusionMatrix.update: preds must be class ids (integers) or B x K x H x W "
                             "logits, target integer ids")
        if self.validate_args and not from_logits and preds.numel():
            lo, hi = _min_max(preds)
            if lo < 0 or hi >= k:
                raise ValueError(f"ConfusionMatrix.update: preds hold ids outside 0..{k - 1} (min {lo}, max {hi})")
        b = target.shape[0]
        if not self.per_image:
            self.confmat += self._histogram(target.reshape(1, -1), preds.reshape(1, -1))[0].reshape(-1)
            return
        image_ids = self._resolve_ids(image_ids, b, target.device)
        mats = self._histogram(target.reshape(b, -1), preds.reshape(b, -1))  # B x K x K
        self.image_confmat.append(mats.reshape(-1))
        self.image_ids.append(image_ids)

    def _histogram(self, target: torch.Tensor, preds: torch.Tensor) -> torch.Tensor:
        """B x K x K confusion counts of B flattened images with ONE bincount over
        ``(target * B + image) * K + pred``; target rows run over all 256 label values, so the ignore
        row (255) is dropped afterwards instead of masking pixels, and ids outside the taxonomy show
        up as non-empty rows (or a longer histogram) instead of needing another pass.
        On CPU the same arithmetic and bincount run on numpy views of the tensors (zero copy), which
        are several times faster than torch's CPU kernels for this."""
        k, b = self.num_classes, target.shape[0]
        n_bins = 256 * b * k
        try:
            if target.device.type == "cpu":
                cells = np.multiply(target.numpy(), b * k, dtype=np.int64)  # B x N
                cells += np.arange(0, b * k, k, dtype=np.int64)[:, None]
                cells += preds.numpy()
                hist = np.bincount(cells.ravel(), minlength=n_bins)
            else:
                cells = target.long() * (b * k)
                cells += torch.arange(0, b * k, k, device=target.device).unsqueeze(1)
                cells += preds
                hist = torch.bincount(cells.reshape(-1), minlength=n_bins)
        except (ValueError, RuntimeError) as err:  # negative cells: negative target ids
            raise ValueError(f"ConfusionMatrix.update: target holds negative ids ({err})") from None
        if hist.shape[0] > n_bins:
            raise ValueError("ConfusionMatrix.update: target holds ids above 255")
        hist = hist.reshape(256, b, k)
        if self.validate_args:
            bad = hist[k:256].sum((1, 2))  # label values K..255 (the last one is ignore_index or not)
            bad[self.ignore_index - k] = 0
            if bad.any():
                ids = (np.flatnonzero(np.asarray(bad.tolist())) + k).tolist()
                raise ValueError(f"ConfusionMatrix.update: target holds ids {ids[:10]} outside 0..{k - 1} that "
                                 f"are not ignore_index={self.ignore_index}")
        if isinstance(hist, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(hist[:k].transpose(1, 0, 2)))
        return hist[:k].permute(1, 0, 2)  # B x K(target) x K(pred)

    def _resolve_ids(self, image_ids: torch.Tensor | None, batch_size: int, device: torch.device) -> torch.Tensor:
        if image_ids is None:
            if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
                raise ValueError("ConfusionMatrix.update: pass image_ids (dataset indices) when running "
                                 "distributed, so padded duplicates can be dropped")
            start = int(sum(t.numel() for t in self.image_ids))
            return torch.arange(start, start + batch_size, device=device, dtype=torch.int64)
        image_ids = torch.as_tensor(image_ids, device=device).reshape(-1).long()
        if image_ids.numel() != batch_size:
            raise ValueError(f"ConfusionMatrix.update: {image_ids.numel()} image ids for {batch_size} images")
        return image_ids

    def _sync_dist(self, dist_sync_fn=gather_all_tensors, process_group=None) -> None:
        # A rank that scored no image would otherwise send torchmetrics' float32 placeholder while
        # the others send int64: give it typed empty tensors (harmless for concatenation).
        if self.per_image:
            for name in ("image_confmat", "image_ids"):
                state = getattr(self, name)
                if isinstance(state, list) and not state:
                    state.append(torch.zeros(0, dtype=torch.int64, device=self.device))
        super()._sync_dist(dist_sync_fn, process_group)

    def _unique_images(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids, n x K x K matrices) of the gathered state, sorted by id, duplicates dropped."""
        k = self.num_classes
        ids = dim_zero_cat(self.image_ids).long() if len(self.image_ids) else torch.zeros(0, dtype=torch.int64)
        if len(self.image_confmat):
            mats = dim_zero_cat(self.image_confmat).long().reshape(-1, k, k)
        else:
            mats = torch.zeros(0, k, k, dtype=torch.int64)
        order = torch.argsort(ids, stable=True)
        ids, mats = ids[order], mats[order]
        keep = torch.ones_like(ids, dtype=torch.bool)
        keep[1:] = ids[1:] != ids[:-1]
        return ids[keep], mats[keep]

    def compute(self) -> torch.Tensor:
        """K x K int64 matrix, rows = ground truth, columns = prediction."""
        k = self.num_classes
        if not self.per_image:
            return self.confmat.reshape(k, k).clone()
        _, mats = self._unique_images()
        return mats.sum(0).to(self.device) if mats.numel() else torch.zeros(k, k, dtype=torch.int64, device=self.device)

    def per_image_stats(self) -> PerImageStats:
        """Per-image |G|, |P|, |G∩P| (gathered across ranks, sorted by image id, deduplicated)."""
        if not self.per_image:
            raise RuntimeError("ConfusionMatrix(per_image=False) keeps no per-image statistics")
        with self.sync_context(dist_sync_fn=self.dist_sync_fn, should_sync=self._to_sync,
                               should_unsync=self._should_unsync):
            ids, mats = self._unique_images()
        mats = mats.cpu()
        return PerImageStats(
            gt=mats.sum(2).numpy(),  # row sums
            pred=mats.sum(1).numpy(),  # column sums
            inter=torch.diagonal(mats, dim1=1, dim2=2).numpy().copy(),
            image_ids=ids.cpu().numpy(),
        )
