"""`lt-faceparse zoo list | eval`, and ``--checkpoint`` / ``--model`` for ``parse`` and ``eval``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lt_faceparse.errors import DataError

COMMANDS = ("zoo",)  # the subcommands register() adds


def add_weights_arguments(p: argparse.ArgumentParser, checkpoint_help: str) -> None:
    """``--checkpoint FILE`` or ``--model NAME`` (a released model, see ``zoo list``): exactly one."""
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--checkpoint", help=checkpoint_help)
    group.add_argument("--model", metavar="NAME",
                       help="a released model by name (lt-faceparse zoo list), e.g. segface/swinb_celeba_512: "
                            "downloaded and converted on first use, then read from the cache")


def weights_of(args: argparse.Namespace, *, parsing: bool = False) -> str | Path:
    """The weight file of ``--checkpoint``, or of ``--model`` (fetched and converted when not cached).
    ``parsing``: a warp model (LaPa) without ``--landmarks`` stops before anything is downloaded."""
    from lt_faceparse.inference.parser import LANDMARKS_NEEDED  # lazy: torch, on use
    from lt_faceparse.zoo import get_entry, pretrained_weights  # lazy: torch, on use

    if args.checkpoint is not None:
        return args.checkpoint

    if parsing and get_entry(args.model).needs_landmarks and args.landmarks is None:
        raise DataError(None, LANDMARKS_NEEDED)
    return pretrained_weights(args.model)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``zoo list`` and ``zoo eval`` to ``sub``."""
    zoo = sub.add_parser("zoo", help="released models by name: list them, re-score them")
    actions = zoo.add_subparsers(dest="zoo_command", metavar="ACTION", required=True)

    p = actions.add_parser("list", help="the registered released models, their published scores, cache state "
                                        "and licence terms")
    p.add_argument("--format", choices=("md", "csv", "json"), default=None,
                   help="md | csv | json (default: a rich table in a terminal, Markdown otherwise)")
    p.set_defaults(func=_list)

    p = actions.add_parser(
        "eval", help="re-score the released models of a dataset under one protocol (resumable)",
        description="Fetch, time and score every released model of --dataset that matches --models, under one "
                    "split, merge preset and scoring protocol, with bootstrap intervals; writes one record per "
                    "model and the leaderboard beside the published numbers. Models already scored in --out "
                    "are not scored again.")
    p.add_argument("--dataset", required=True, help="celebamask-hq | lapa")
    p.add_argument("--root", required=True, help="dataset root folder")
    p.add_argument("--models", default=None, metavar="PATTERN", help='shell pattern of names, e.g. "segface/swinb_*"')
    p.add_argument("--out", default=None, help="results folder (default: zoo_eval/<dataset>)")
    p.add_argument("--split", default="test", choices=("val", "test"))
    p.add_argument("--protocol", default="native", choices=("native", "input"),
                   help="native (default): against the labels at their original size, the same for every input "
                        "resolution; input: at each model's input resolution (the SegFace release's)")
    p.add_argument("--merge", default=None, help="CelebAMask-HQ paint-order preset (default: segface, for all)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--bootstrap", type=int, default=1000, metavar="N", help="bootstrap resamples (default 1000)")
    p.add_argument("--bootstrap-seed", type=int, default=0)
    p.add_argument("--speed-runs", type=int, default=5, help="timed batch-1 passes per model (default 5)")
    p.set_defaults(func=_eval)


def _list(args: argparse.Namespace) -> int:
    from lt_faceparse.reporting.zoo_tables import print_zoo_list  # lazy: torch, on use
    from lt_faceparse.zoo import zoo_entries  # lazy: torch, on use

    print_zoo_list(zoo_entries(), args.format)
    return 0


def _eval(args: argparse.Namespace) -> int:
    from lt_faceparse.experiments.zoo_eval import zoo_eval  # lazy: torch, on use

    result = zoo_eval(args.dataset, args.root, args.out, models=args.models, split=args.split,
                      protocol=args.protocol, merge=args.merge, batch_size=args.batch_size, device=args.device,
                      num_workers=args.num_workers, n_resamples=args.bootstrap, seed=args.bootstrap_seed,
                      speed_runs=args.speed_runs)
    for name, reason in result.unavailable.items():
        print(f"lt-faceparse zoo eval: not scored: {reason}", file=sys.stderr)
    print(f"scored {len(result.scored)} model(s), {len(result.skipped)} already scored (skipped), "
          f"{len(result.unavailable)} unavailable; leaderboard: {', '.join(map(str, result.tables[:2]))}")
    return 0
