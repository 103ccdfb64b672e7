"""`lt-faceparse` subcommands of the analysis layer: ``freq`` (class frequencies) and ``score``
(score saved label PNGs)."""

from __future__ import annotations

import argparse
import math

from lt_faceparse.errors import LTFaceParseError
from lt_faceparse.runtime import one_blas_thread

COMMANDS = ("freq", "freq-merge", "score")  # the subcommands register() adds


def _pct(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{100 * v:.2f}"


def _shard_arg(text: str) -> tuple[int, int]:
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected I/N (shard I of N, 0 <= I < N), got {text!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, got {text!r}")
    return i, n


def _thresholds(args: argparse.Namespace) -> dict[str, float]:
    from lt_faceparse.analysis.bins import check_thresholds  # lazy: torch, on use

    try:
        return check_thresholds({"rare_below": args.rare_below, "common_below": args.common_below})
    except ValueError as err:
        raise LTFaceParseError(f"--rare-below/--common-below: {err}") from None


def _print_tables(tables: dict, out: str) -> None:
    from lt_faceparse.data.registry import merge_text  # lazy: the library, on use

    for t in tables.values():
        s = t.summary
        bins = ", ".join(f"{b}: {len(v)}" for b, v in t.bins().items())
        merge = merge_text(s.get("merge"), s.get("data_format") or s.get("dataset"))
        print(f"{s['dataset']} {s['split']} merge={merge}: {s['num_images']} images; Gini over foreground "
              f"presence {s['gini_image']:.3f}, over foreground pixels {s['gini_pixel']:.3f}; bins by presence "
              f"(rare < {s['thresholds']['rare_below']}, common < {s['thresholds']['common_below']}): {bins}")
    print(f"wrote {out}")


def _freq(args: argparse.Namespace) -> int:
    one_blas_thread()  # before numpy loads: the work is spread over processes
    from lt_faceparse.analysis.frequency import frequency_report, frequency_shard  # lazy: torch, on use

    options = dict(merges=args.merge, log_scale=args.log, num_workers=args.workers, thresholds=_thresholds(args))
    if args.shard is not None:
        path = frequency_shard(args.dataset, args.root, args.split, args.out, args.shard, **options)
        print(f"wrote {path} (shard {args.shard[0]}/{args.shard[1]}; join all {args.shard[1]} with "
              f"lt-faceparse freq-merge)")
        return 0
    _print_tables(frequency_report(args.dataset, args.root, args.split, args.out, **options), args.out)
    return 0


def _freq_merge(args: argparse.Namespace) -> int:
    one_blas_thread()  # before numpy loads: the figures are drawn by processes
    from lt_faceparse.analysis.frequency import merge_shards  # lazy: torch, on use

    _print_tables(merge_shards(args.shards, args.out, args.workers), args.out)
    return 0


def _score(args: argparse.Namespace) -> int:
    from lt_faceparse.analysis.frequency import FrequencyTable  # lazy: torch, on use
    from lt_faceparse.engine.score_predictions import score_prediction_folders  # lazy: torch, on use
    from lt_faceparse.records import save_record  # lazy: torch, on use

    provenance = {k: v for k, v in {"model": args.model, "dataset": args.dataset, "split": args.split,
                                    "merge": args.merge}.items() if v is not None}
    bins = FrequencyTable.read(args.bins) if args.bins else None
    record = score_prediction_folders(args.gt, args.pred, args.taxonomy, numbering=args.numbering,
                                      gt_numbering=args.gt_numbering, provenance=provenance, bins=bins)
    if args.ci:
        record = record.with_bootstrap_ci(n_resamples=args.ci, seed=args.seed)
    path = save_record(record, args.out)
    print(f"{record.num_images} images, pooled confusion matrix at the ground-truth resolution: "
          f"mean F1 (foreground) {_pct(record.mean_f1)}, mean IoU with background {_pct(record.mean_iou_with_bg)}, "
          f"without background {_pct(record.mean_iou_without_bg)}, pixel accuracy {_pct(record.pixel_accuracy)}")
    if record.undefined_classes:
        print(f"undefined (absent from ground truth and prediction, left out of the means): "
              f"{', '.join(record.undefined_classes)}")
    print(f"wrote {path}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this layer's subcommands to ``sub``."""
    p = sub.add_parser("freq", help="class frequencies, Gini and rare/common/frequent bins of a dataset split",
                       description="Per-class presence probability, pixel share, mean area and bin; "
                       "Gini over presence and pixels; CSV, summary.json and a Figure-1-style plot.")
    p.add_argument("--dataset", required=True, help="celebamask-hq | lapa | helen | folder")
    p.add_argument("--root", required=True, help="dataset root in its distributed layout")
    p.add_argument("--split", required=True, choices=["train", "val", "test", "all"])
    p.add_argument("--merge", nargs="+", default=None, metavar="PRESET",
                   help="CelebAMask-HQ paint-order preset(s) (segface, official, zll); several compare side by side")
    p.add_argument("--log", action="store_true", help="log-scale presence axis")
    p.add_argument("--workers", type=int, default=0, help="label-reading worker processes")
    p.add_argument("--rare-below", type=float, default=0.30, help="presence below this is 'rare' (default 0.30)")
    p.add_argument("--common-below", type=float, default=0.90,
                   help="presence below this (and not rare) is 'common', else 'frequent' (default 0.90)")
    p.add_argument("--shard", type=_shard_arg, metavar="I/N",
                   help="count only block I of N of the images into OUT/shard-I-of-N.npz (join with freq-merge)")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_freq)

    p = sub.add_parser("freq-merge", help="join the shards of a `freq --shard I/N` run into its report",
                       description="Join the N shard files of one freq run (all of them, each once, counted "
                       "with the same settings) and write the report an unsharded run writes.")
    p.add_argument("shards", nargs="+", help="shard files (shard-I-of-N.npz) or folders holding them")
    p.add_argument("--workers", type=int, default=0, help="processes drawing the figures")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(func=_freq_merge)

    p = sub.add_parser("score", help="score saved label PNGs against ground-truth PNGs; writes a result record",
                       description="Match prediction and ground-truth PNGs by file name, accumulate one "
                       "confusion matrix and write record JSON + per-image npz.")
    p.add_argument("--taxonomy", required=True,
                   help="celebamask-hq | lapa | helen, a folder dataset root or its classes.txt, or a weight file "
                        "(.safetensors: the taxonomy it was trained with)")
    p.add_argument("--gt", required=True, help="folder of ground-truth label PNGs (255 = ignore)")
    p.add_argument("--pred", required=True, help="folder of predicted label PNGs")
    p.add_argument("--out", required=True, help="record path (.json) or folder")
    p.add_argument("--numbering", default="ours",
                   help="id numbering of the predictions: ours (default), zll, official, ...")
    p.add_argument("--gt-numbering", default="ours", help="id numbering of the ground truth (default ours)")
    p.add_argument("--model", help="model name stored in the record's provenance")
    p.add_argument("--dataset", help="dataset name stored in the provenance")
    p.add_argument("--split", help="split stored in the provenance")
    p.add_argument("--merge", help="merge preset stored in the provenance")
    p.add_argument("--bins", help="a `freq` output folder whose bins give F1@rare/common/frequent")
    p.add_argument("--ci", type=int, default=0, metavar="R",
                   help="add 95%% bootstrap intervals from R resamples over images (0 = none)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    p.set_defaults(func=_score)
