"""``lt-faceparse`` command line: argument parsing only; each subcommand calls one library function.

Subcommands are grouped by layer, one module each (``data``, ``analysis``, ``model``, ``baselines``,
``engine``, ``report``, ``zoo``); each module exposes ``register(subparsers)``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from lt_faceparse import __version__
from lt_faceparse.errors import LTFaceParseError
from lt_faceparse.runtime import prefer_huge_pages

_GROUPS = ("data", "analysis", "model", "baselines", "engine", "report", "zoo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lt-faceparse",
        description="Long-tail face parsing: datasets, class frequencies, SegFace and baselines, "
        "training, evaluation, leaderboards and reports.",
    )
    parser.add_argument("--version", action="version", version=f"lt-faceparse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in _GROUPS:
        importlib.import_module(f"lt_faceparse.cli.{group}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    prefer_huge_pages()  # before the first tensor: PyTorch reads the setting once (see lt_faceparse.runtime)
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except (LTFaceParseError, FileNotFoundError, KeyError, ValueError) as err:
        msg = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"lt-faceparse {args.command}: error: {msg}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
