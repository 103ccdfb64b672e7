"""Throughput of :class:`ConfusionMatrix` against a plain per-image numpy histogram baseline."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from lt_faceparse.metrics.bootstrap import bootstrap_ci, paired_bootstrap
from lt_faceparse.metrics.confusion import ConfusionMatrix
from lt_faceparse.metrics.per_image import PerImageStats
from lt_faceparse.taxonomy import get_taxonomy


def _numpy_per_image_histogram(preds: list[np.ndarray], targets: list[np.ndarray], k: int) -> np.ndarray:
    """The usual evaluation loop of face-parsing repos: one ``np.bincount`` per image."""
    cm = np.zeros(k * k, dtype=np.int64)
    for p_batch, t_batch in zip(preds, targets):
        for p, t in zip(p_batch, t_batch):
            valid = t != 255
            cm += np.bincount(k * t[valid].astype(np.int64) + p[valid], minlength=k * k)
    return cm.reshape(k, k)


def confusion_throughput(*, num_classes: int = 19, batch_size: int = 8, size: int = 512, num_batches: int = 8,
                        device: str = "cpu", seed: int = 0, repeats: int = 3) -> dict[str, Any]:
    """Pixels/s of our metric (per-image stats on and off) and of the numpy baseline on the same
    random predictions (ignore pixels ~5%); best of ``repeats`` runs; the matrices are checked equal."""
    g = torch.Generator().manual_seed(seed)
    k = num_classes
    targets = [torch.randint(0, k, (batch_size, size, size), generator=g) for _ in range(num_batches)]
    for t in targets:
        t[torch.rand(t.shape, generator=g) < 0.05] = 255
    preds = [torch.randint(0, k, (batch_size, size, size), generator=g) for _ in range(num_batches)]
    np_t = [t.numpy().astype(np.uint8) for t in targets]
    np_p = [p.numpy().astype(np.int64) for p in preds]
    dev_t = [t.to(device) for t in targets]
    dev_p = [p.to(device) for p in preds]
    pixels = batch_size * size * size * num_batches

    def sync():
        if torch.device(device).type == "cuda":
            torch.cuda.synchronize()

    def time_metric(per_image: bool) -> tuple[float, np.ndarray]:
        best, cm = float("inf"), None
        for _ in range(repeats):
            m = ConfusionMatrix(k, per_image=per_image).to(device)
            sync()
            t0 = time.perf_counter()
            for p, t in zip(dev_p, dev_t):
                m.update(p, t)
            cm = m.compute()
            sync()
            best = min(best, time.perf_counter() - t0)
        return best, cm.cpu().numpy()

    ours_s, ours_cm = time_metric(True)
    plain_s, plain_cm = time_metric(False)
    base_s, base_cm = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        base_cm = _numpy_per_image_histogram(np_p, np_t, k)
        base_s = min(base_s, time.perf_counter() - t0)
    if not (np.array_equal(ours_cm, base_cm) and np.array_equal(plain_cm, base_cm)):
        raise AssertionError("throughput: ConfusionMatrix and the numpy baseline disagree")
    return {
        "device": device, "torch_threads": torch.get_num_threads(), "num_classes": k,
        "batch_size": batch_size, "size": size, "num_batches": num_batches, "pixels": pixels,
        "ours_per_image_px_s": pixels / ours_s, "ours_matrix_only_px_s": pixels / plain_s,
        "numpy_per_image_px_s": pixels / base_s, "speedup": base_s / ours_s,
        "speedup_matrix_only": base_s / plain_s,
    }


def bootstrap_throughput(*, num_images: int = 3000, n_resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Seconds for percentile-bootstrap intervals (per-class F1 + mean F1) and for a paired test of
    two records, on synthetic CelebAMask-HQ-sized per-image counts (19 classes)."""
    taxonomy = get_taxonomy("celebamask-hq")
    rng = np.random.default_rng(seed)
    shape = (num_images, taxonomy.num_classes)
    gt = rng.integers(0, 5000, shape) * (rng.random(shape) < 0.7)
    inter = (gt * rng.uniform(0.6, 1.0, shape)).astype(np.int64)
    a = PerImageStats(gt, inter + rng.integers(0, 200, shape) * (gt > 0), inter, np.arange(num_images))
    b = PerImageStats(gt, a.pred, np.minimum(inter + 10, np.minimum(gt, a.pred)), np.arange(num_images))
    t0 = time.perf_counter()
    bootstrap_ci(a, taxonomy, n_resamples=n_resamples, seed=seed)
    t1 = time.perf_counter()
    paired_bootstrap(a, b, taxonomy, n_resamples=n_resamples, seed=seed)
    t2 = time.perf_counter()
    return {"num_images": num_images, "n_resamples": n_resamples, "num_classes": taxonomy.num_classes,
            "bootstrap_ci_s": t1 - t0, "paired_bootstrap_s": t2 - t1}
