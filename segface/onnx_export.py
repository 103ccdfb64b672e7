"""Export a face parser to ONNX (fixed square resolution, dynamic batch)."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
import torch.nn as nn

from lt_faceparse.atomic import atomic_path


def export_onnx(model: nn.Module, path: str | Path, resolution: int, *, opset: int = 17) -> Path:
    """Write ``model`` (images B x 3 x R x R -> logits B x K x R x R) to ``path`` atomically.

    Inputs are named ``images`` and outputs ``logits``; the batch axis is dynamic. The positional
    encoding and the folded fusion weights become constants of the graph.
    """
    path = Path(path)
    model = model.eval()
    example = torch.zeros(1, 3, resolution, resolution, device=next(model.parameters()).device)
    with atomic_path(path) as tmp, torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shape checks become constants, as intended
        torch.onnx.export(
            model, (example,), str(tmp), dynamo=False, opset_version=opset,
            input_names=["images"], output_names=["logits"],
            dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}},
        )
    return path


def export_checkpoint_onnx(checkpoint: str | Path, out: str | Path, resolution: int | None = None,
                           *, opset: int = 17) -> Path:
    """Export one of our weight files; ``resolution`` defaults to the one it was trained at."""
    from lt_faceparse.weights import load_model

    model, meta = load_model(checkpoint)
    return export_onnx(model, out, resolution or int(meta["resolution"]), opset=opset)
