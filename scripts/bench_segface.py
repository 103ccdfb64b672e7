#!/usr/bin/env python
"""SegFace speed: its default path against the literal formulation (and BiSeNet-ResNet18).

Without --train: median batch-1 latency, parameters and FLOPs per backbone and resolution (CPU; CUDA
when available): the default formulation, the literal one and BiSeNet-ResNet18.

With --train (issue 12's measurements, on the first of --devices): (a) training step (forward + loss +
backward + AdamW) of the default path vs the literal formulation; (b) inference ratios (batch 16 bf16,
batch 1 fp32 with the compile option); (c) one loader worker's time per image, the training loader's
rate, and `train` end to end next to the model-only rate. Full size on CUDA (batch 8 at 512 px,
MobileNetV3-L and Swin-B), small on the CPU.

Examples:
  python scripts/bench_segface.py --backbones mobilenet swin_base --resolutions 256 512 --threads 2
  python scripts/bench_segface.py --devices cuda --train --json out/train_bench.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from lt_faceparse.atomic import atomic_write_text
from lt_faceparse.runtime import prefer_huge_pages


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbones", nargs="+", default=None,
                   help="inference backbones (default: mobilenet; with --train on CUDA: mobilenet swin_base)")
    p.add_argument("--resolutions", nargs="+", type=int, default=[512])
    p.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--no-literal", action="store_true", help="skip the literal formulation")
    p.add_argument("--no-bisenet", action="store_true", help="skip the BiSeNet-ResNet18 reference")
    p.add_argument("--channels-last", action="store_true",
                   help="channels-last memory (with --train: an extra default channels-last training row)")
    p.add_argument("--sections", action="store_true",
                   help="also time SegFace's parts (backbone, fusion, blocks, head) on the CPU")
    p.add_argument("--train", action="store_true", help="issue 12's training, inference and end-to-end comparisons")
    p.add_argument("--only", nargs="+", choices=("train", "inference", "end_to_end"), default=None,
                   help="with --train: only these sections")
    p.add_argument("--train-backbones", nargs="+", default=None)
    p.add_argument("--train-resolution", type=int, default=None)
    p.add_argument("--train-batch", type=int, default=None)
    p.add_argument("--precision", choices=("bf16", "fp32"), default=None, help="training autocast on CUDA")
    p.add_argument("--steps", type=int, default=None, help="training steps per round")
    p.add_argument("--e2e-images", type=int, default=None, help="images of the end-to-end training set")
    p.add_argument("--cache", default=None, help="folder for the generated end-to-end data and run")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.add_argument("--no-huge-pages", action="store_true",
                   help="leave THP_MEM_ALLOC_ENABLE unset (see lt_faceparse.runtime)")
    args = p.parse_args(argv)
    if not args.no_huge_pages:
        prefer_huge_pages()  # before the first tensor is allocated
    torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    if args.train:
        _train_bench(args, devices[0])
    else:
        rows = _inference_table(args, devices)
        if args.json:
            _write_json(args.json, rows)
    return 0


def _write_json(path: str, result: object) -> None:
    atomic_write_text(Path(path), json.dumps(result, indent=2, default=str) + "\n")


def _train_bench(args: argparse.Namespace, device: str) -> None:
    from lt_faceparse.speed.suite import BenchSettings, run_train_bench

    given = {
        "train_backbones": args.train_backbones, "train_resolution": args.train_resolution,
        "train_batch": args.train_batch, "precision": args.precision, "steps": args.steps,
        "inference_backbones": args.backbones, "inference_resolution": args.resolutions[0],
        "e2e_images": args.e2e_images, "cache": Path(args.cache) if args.cache else None,
    }
    settings = BenchSettings.for_device(device, rounds=args.rounds, channels_last=args.channels_last,
                                        **{k: v for k, v in given.items() if v is not None})
    sections = args.only or ("train", "inference", "end_to_end")

    def on_section(markdown: str, results: dict) -> None:
        print(markdown, flush=True)
        if args.json:  # rewritten after every section: a run cut short keeps what it measured
            _write_json(args.json, results)

    run_train_bench(settings, sections=sections, on_section=on_section)


def _inference_table(args: argparse.Namespace, devices: list[str]) -> list[dict]:
    from lt_faceparse.models import build_model
    from lt_faceparse.speed.segface import bench_segface, format_rows, time_sections

    backbones = args.backbones or ["mobilenet"]
    rows = bench_segface(backbones, args.resolutions, devices=devices, literal=not args.no_literal,
                         bisenet=not args.no_bisenet, channels_last=args.channels_last,
                         rounds=args.rounds, runs=args.runs)
    print(format_rows(rows))
    if args.sections:
        for backbone in backbones:
            for resolution in args.resolutions:
                parts = time_sections(build_model("segface", backbone=backbone), resolution,
                                      runs=args.rounds * args.runs, channels_last=args.channels_last)
                print(f"\nSegFace-{backbone} at {resolution} px, CPU, {args.threads} thread(s), default formulation: "
                      f"median ms per part over {args.rounds * args.runs} passes (forward hooks)")
                print(" | ".join(f"{k} {v:.1f}" for k, v in parts.items()))
    return rows


if __name__ == "__main__":
    sys.exit(main())
