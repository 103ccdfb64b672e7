"""Export a face parser to ONNX (fixed square resolution, dynamic batch)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
import torch.nn as nn

from lt_faceparse.atomic import atomic_path
from lt_faceparse.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from lt_faceparse.weights import load_model, taxonomy_of


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
    """Export one of our weight files; ``resolution`` defaults to the one it was trained at.

    The ONNX file's ``metadata_props`` hold ``lt_faceparse``: JSON with the whole taxonomy (class
    names, display names, colours, ...), the input resolution and normalisation, and the source, so
    the exported model is as self-contained as the weight file."""
    import onnx  # lazy: optional extra lt-faceparse[onnx]

    model, meta = load_model(checkpoint)
    taxonomy = taxonomy_of(meta, checkpoint)
    resolution = resolution or int(meta["resolution"])
    path = export_onnx(model, out, resolution, opset=opset)
    graph = onnx.load(str(path))
    info = {
        "taxonomy": taxonomy.to_dict(), "resolution": resolution, "model": meta["model"],
        "input": f"images: N x 3 x {resolution} x {resolution} float32 RGB in [0, 1], then (x - mean) / std",
        "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
        "output": f"logits: N x {taxonomy.num_classes} x {resolution} x {resolution}; argmax over axis 1 = class id",
        "warp": meta.get("warp"), "source": meta.get("source"),
    }
    entry = graph.metadata_props.add()
    entry.key, entry.value = "lt_faceparse", json.dumps(info)
    with atomic_path(path) as tmp:
        onnx.save(graph, str(tmp))
    return path
