"""Benchmark the split-level confusion-matrix metric against a per-image numpy histogram.

    python scripts/bench_metrics.py [--device cuda] [--size 512] [--batch-size 8] [--batches 8]

Prints pixels/s of ConfusionMatrix (with and without per-image stats) next to the per-image
``np.bincount`` loop most face-parsing repositories use, their ratio, and the time of 1,000
bootstrap resamples of 3,000 images.
"""

from __future__ import annotations

import argparse

from lt_faceparse.metrics.throughput import bootstrap_throughput, confusion_throughput


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--classes", type=int, default=19)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--boot-images", type=int, default=3000)
    ap.add_argument("--boot-resamples", type=int, default=1000)
    args = ap.parse_args()
    r = confusion_throughput(num_classes=args.classes, batch_size=args.batch_size, size=args.size,
                            num_batches=args.batches, device=args.device, repeats=args.repeats)
    print(f"{r['pixels']:,} pixels ({r['num_batches']} batches of {r['batch_size']} x {r['size']}^2, "
          f"K={r['num_classes']}, ~5% ignore), best of {args.repeats}, device {r['device']}, "
          f"{r['torch_threads']} torch threads")
    print(f"ConfusionMatrix (one bincount per batch, per-image stats): {r['ours_per_image_px_s'] / 1e6:9.1f} Mpx/s")
    print(f"ConfusionMatrix (matrix only, per_image=False):            {r['ours_matrix_only_px_s'] / 1e6:9.1f} Mpx/s")
    print(f"numpy per-image np.bincount baseline:                      {r['numpy_per_image_px_s'] / 1e6:9.1f} Mpx/s")
    print(f"ratio ours/baseline: {r['speedup']:.2f}x (per-image stats), {r['speedup_matrix_only']:.2f}x (matrix only)")
    b = bootstrap_throughput(num_images=args.boot_images, n_resamples=args.boot_resamples)
    print(f"bootstrap over images ({b['n_resamples']} resamples of {b['num_images']} images, K={b['num_classes']}): "
          f"per-class + mean F1 95% CIs {b['bootstrap_ci_s']:.2f} s, paired test {b['paired_bootstrap_s']:.2f} s")


if __name__ == "__main__":
    main()
