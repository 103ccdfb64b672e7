#!/usr/bin/env python
"""Thin entry point: ``python scripts/leaderboard.py --results runs/ --include-reported --out reports/tables``
is ``lt-faceparse leaderboard ...`` (see ``lt_faceparse.reporting.leaderboard.run_leaderboard``)."""

import sys

from lt_faceparse.cli import main

if __name__ == "__main__":
    sys.exit(main(["leaderboard", *sys.argv[1:]]))
