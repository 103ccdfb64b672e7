"""``lt-faceparse`` command line: argument parsing only; each subcommand calls one library function.

Subcommands are grouped by layer, one module each (``data``, ``analysis``, ``model``, ``baselines``,
``engine``, ``report``, ``zoo``); each module exposes ``register(subparsers)`` and ``COMMANDS``, the
names it registers, so that a command builds only its own group's parsers.
"""

from __future__ import annotations

import argparse
import errno
import gc
import importlib
import os
import sys
from typing import Sequence

from lt_faceparse import __version__
from lt_faceparse.errors import LTFaceParseError
from lt_faceparse.runtime import prefer_huge_pages

_GROUPS = ("data", "analysis", "model", "baselines", "engine", "report", "zoo")


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand, or only of ``command``'s group when one defines it (parsing a
    command needs no other; building all of them costs about 20 ms of every command's start)."""
    parser = argparse.ArgumentParser(
        prog="lt-faceparse",
        description="Long-tail face parsing: datasets, class frequencies, SegFace and baselines, "
        "training, evaluation, leaderboards and reports.",
    )
    parser.add_argument("--version", action="version", version=f"lt-faceparse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    groups = [importlib.import_module(f"lt_faceparse.cli.{group}") for group in _GROUPS]
    own = [g for g in groups if command in g.COMMANDS]
    for group in own or groups:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    prefer_huge_pages()  # before the first tensor: PyTorch reads the setting once (see lt_faceparse.runtime)
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv[0] if argv and not argv[0].startswith("-") else None)
    args, extra = parser.parse_known_args(argv)
    if extra and isinstance(getattr(args, "overrides", None), list) and all(_is_override(a) for a in extra):
        args.overrides += extra  # KEY=VALUE overrides after an option (`train CFG a=1 --resume auto b=2`)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        result = args.func(args)
    except (LTFaceParseError, OSError, KeyError, ValueError) as err:
        if isinstance(err, OSError):
            msg = describe_os_error(err)
        else:
            msg = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
        print(f"lt-faceparse {args.command}: error: {msg}", file=sys.stderr)
        return 2
    return int(result or 0)


def run() -> None:
    """The ``lt-faceparse`` program: :func:`main`, then exit. Before exiting it freezes the garbage
    collector's objects (``gc.freeze``): the interpreter's last collections over every object the
    command's libraries made then have nothing to visit (0.1 s of a ``freq`` run with matplotlib
    loaded, on our test machine); modules are still torn down and exit handlers still run."""
    code = main()
    gc.freeze()
    sys.exit(code)


def _is_override(arg: str) -> bool:
    return not arg.startswith("-") and "=" in arg


_OS_PROBLEMS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "not a folder (a file is in the way)",
    errno.EEXIST: "already exists (a file where a folder is needed?)",
    errno.EISDIR: "is a folder, not a file",
    errno.EROFS: "read-only file system",
    errno.ENOENT: "no such file or folder",
}


def describe_os_error(err: OSError) -> str:
    """One line naming the file and the problem of a filesystem error (``"<file>: <problem>"``)."""
    if err.errno is None or (err.filename is None and err.errno not in _OS_PROBLEMS):
        return str(err)  # raised with a message of its own
    problem = _OS_PROBLEMS.get(err.errno) or (err.strerror or os.strerror(err.errno)).lower()
    return problem if err.filename is None else f"{err.filename}: {problem}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
