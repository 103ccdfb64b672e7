"""`lt-faceparse` subcommands of the data layer: ``synth`` and ``check-dataset``."""

from __future__ import annotations

import argparse
import json

COMMANDS = ("synth", "check-dataset")  # the subcommands register() adds



def _presence_arg(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected CLASS=PROBABILITY, got {text!r}")
    try:
        return name.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a probability: {value!r}") from None


def _splits_arg(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected three fractions like 0.8,0.1,0.1, got {text!r}") from None
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected three fractions (train,val,test), got {text!r}")
    return parts


def _synth(args: argparse.Namespace) -> int:
    from lt_faceparse.data.synthetic import timed_generation  # lazy: torch, on use

    out, seconds = timed_generation(
        args.out, fmt=args.format, num_images=args.num_images, size=args.size, seed=args.seed,
        presence=dict(args.presence or []), splits=args.splits, num_workers=args.workers, overwrite=args.overwrite,
        image_scale=args.image_scale, min_stroke=args.min_stroke,
    )
    info = json.loads((out / "presence.json").read_text())
    stroke = f", accessory strokes and studs at least {args.min_stroke:g} px" if args.min_stroke else ""
    print(f"SynthFace-LT ({args.format} layout): {args.num_images} images, label maps {args.size} px{stroke}, "
          f"seed {args.seed}, splits {list(args.splits)} -> {out}")
    print(f"generated in {seconds:.1f} s wall time; presence table (probability a class is drawn in an image): "
          f"{out / 'presence.json'}")
    print(", ".join(f"{k} {v:.3f}" for k, v in info["presence"].items()))
    return 0


def _check(args: argparse.Namespace) -> int:
    from lt_faceparse.data.check import ERROR, check_dataset, format_report  # lazy: torch, on use

    problems = check_dataset(args.dataset, args.root, deep=not args.quick, num_workers=args.workers)
    if args.json:
        print(json.dumps([p.__dict__ for p in problems], indent=2))
    else:
        print(format_report(problems, args.dataset, args.root))
    return 1 if any(p.level == ERROR for p in problems) else 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add this layer's subcommands to ``sub``."""
    p = sub.add_parser("synth", help="generate SynthFace-LT in a real dataset's on-disk layout",
                       description="Generate the SynthFace-LT long-tail face-parsing dataset.")
    p.add_argument("--format", default="celebamask-hq", choices=["celebamask-hq", "lapa", "helen", "folder"],
                   help="on-disk layout to write (default: celebamask-hq)")
    p.add_argument("--out", required=True, help="output folder (must be empty unless --overwrite)")
    p.add_argument("--num-images", type=int, default=300, help="number of images (default: 300)")
    p.add_argument("--size", type=int, default=256, help="label-map side in pixels (default: 256)")
    p.add_argument("--image-scale", type=int, default=1, choices=[1, 2, 4],
                   help="celebamask-hq: images at this multiple of the mask size (real tree: 2)")
    p.add_argument("--min-stroke", type=float, default=0.0, metavar="PX",
                   help="draw the accessories' strokes (glasses frames, necklaces, earring wires) at least PX "
                        "pixels wide and earring studs at least PX across, so they stay visible at a low "
                        "training resolution (default: 0, their natural size)")
    p.add_argument("--seed", type=int, default=0, help="random seed; same seed, same bytes (default: 0)")
    p.add_argument("--splits", type=_splits_arg, default=(0.8, 0.1, 0.1), help="train,val,test fractions")
    p.add_argument("--presence", type=_presence_arg, action="append", metavar="CLASS=P",
                   help="override one class's presence probability (repeatable), e.g. neck_l=0.1")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: all CPUs)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing SynthFace-LT set in --out")
    p.set_defaults(func=_synth)

    c = sub.add_parser("check-dataset", help="report every problem of a dataset tree in one pass",
                       description="Check a dataset tree: missing or unreadable files, size mismatches, "
                                   "label ids outside the taxonomy, split sizes vs the published ones. "
                                   "Exit code 1 when there is an error (warnings alone give 0).")
    c.add_argument("--dataset", required=True, choices=["celebamask-hq", "lapa", "helen", "folder"])
    c.add_argument("--root", required=True, help="dataset root folder")
    c.add_argument("--quick", action="store_true", help="do not decode pixels (presence and headers only)")
    c.add_argument("--workers", type=int, default=0, help="worker processes decoding files (default: 0)")
    c.add_argument("--json", action="store_true", help="print the problems as JSON")
    c.set_defaults(func=_check)
