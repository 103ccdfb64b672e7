"""SegFace (AAAI 2025): multi-scale features, MLP fusion, class-token transformer decoder."""

from segface.checkpoint import load_checkpoint
from segface.convert import convert_official
from segface.model import SegFace

__all__ = ["SegFace", "convert_official", "load_checkpoint"]  # FaceParser: lt_faceparse.inference.parser
