"""`lt-faceparse` subcommands of the report layer (placeholder until the layer lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this layer's subcommands to ``sub``."""
