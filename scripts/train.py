#!/usr/bin/env python
"""Train from a YAML config; runs as is or under ``torchrun --nproc_per_node=N scripts/train.py ...``.

Same arguments as ``lt-faceparse train``: ``--config FILE [--out DIR] [--resume [true|auto]] [key=value ...]``;
the exit status is the same too (0 done, 2 error, 128 + signal when preempted after a checkpoint).
"""

import sys

from lt_faceparse.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
