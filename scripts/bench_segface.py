#!/usr/bin/env python
"""Median latency, parameters and FLOPs of SegFace per backbone and resolution (CPU; CUDA when available),
the fast path against the literal formulation, and SegFace against BiSeNet-ResNet18.

Example: python scripts/bench_segface.py --backbones mobilenet swin_base --resolutions 256 512 --threads 2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from lt_faceparse.atomic import atomic_write_text
from lt_faceparse.runtime import prefer_huge_pages
from segface.bench import bench_segface, format_rows, time_sections
from segface.model import SegFace


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbones", nargs="+", default=["mobilenet"])
    p.add_argument("--resolutions", nargs="+", type=int, default=[512])
    p.add_argument("--devices", nargs="+", default=None, help="default: cpu, plus cuda when available")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--no-literal", action="store_true", help="skip the literal formulation")
    p.add_argument("--no-bisenet", action="store_true", help="skip the BiSeNet-ResNet18 reference")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--sections", action="store_true",
                   help="also time SegFace's parts (backbone, fusion, blocks, head) on the CPU")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.add_argument("--no-huge-pages", action="store_true",
                   help="leave THP_MEM_ALLOC_ENABLE unset (see lt_faceparse.runtime)")
    args = p.parse_args(argv)
    if not args.no_huge_pages:
        prefer_huge_pages()  # before the first tensor is allocated
    torch.set_num_threads(args.threads)
    devices = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    rows = bench_segface(args.backbones, args.resolutions, devices=devices, literal=not args.no_literal,
                         bisenet=not args.no_bisenet, channels_last=args.channels_last,
                         rounds=args.rounds, runs=args.runs)
    print(format_rows(rows))
    if args.sections:
        for backbone in args.backbones:
            for resolution in args.resolutions:
                parts = time_sections(SegFace(backbone), resolution, runs=args.rounds * args.runs,
                                      channels_last=args.channels_last)
                print(f"\nSegFace-{backbone} at {resolution} px, CPU, {args.threads} thread(s), fast path: "
                      f"median ms per part over {args.rounds * args.runs} passes (forward hooks)")
                print(" | ".join(f"{k} {v:.1f}" for k, v in parts.items()))
    if args.json:
        atomic_write_text(Path(args.json), json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
