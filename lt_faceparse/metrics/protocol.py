"""Scoring protocols: at which resolution predictions meet labels.

- ``input``: at the network's input resolution, against the labels the dataset resized with nearest
  neighbour (SegFace's release). Cheap; small parts lose pixels in the label resize.
- ``native``: logits bilinearly upsampled (align_corners=False) to each image's original label size,
  argmax, scored against ``dataset.read_label(index)`` (DML-CSR, EAGRNet, FaRL). The dataset
  transform must be a resize: ``resize_mode="square"`` or ``"pad"`` (the padding is cropped off
  before upsampling); any other geometric transform (LaPa's RoI tanh-warp) must already have been
  inverted before the logits arrive here: ``lt_faceparse.data.warp.TanhWarp`` returns logits in the
  input frame, and the record's provenance says so under ``warp``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lt_faceparse.data.transforms import unpad
from lt_faceparse.metrics.confusion import ConfusionMatrix

PROTOCOLS: dict[str, str] = {
    "input": "scored at the network input resolution against nearest-resized labels (SegFace release)",
    "native": "logits bilinearly upsampled to each image's original label size, argmax, scored against "
              "the original labels (DML-CSR, EAGRNet, FaRL)",
}


def check_protocol(protocol: str) -> str:
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown scoring protocol {protocol!r}; known: {sorted(PROTOCOLS)}")
    return protocol


def update_for_protocol(metric: ConfusionMatrix, logits: torch.Tensor, batch: Any, protocol: str,
                        dataset: Any = None) -> None:
    """Add one batch of ``logits`` (B x K x h x w, already in the input image frame) to ``metric``.

    ``batch`` is a :class:`lt_faceparse.data.sample.Batch`; ``batch.indices`` become the image ids.
    ``native`` needs ``dataset`` (for ``read_label``)."""
    check_protocol(protocol)
    if logits.ndim != 4:
        raise ValueError(f"update_for_protocol: logits must be B x K x H x W, got {tuple(logits.shape)}")
    ids = batch.indices.to(logits.device)
    if protocol == "input":
        if batch.labels is None:
            raise ValueError("update_for_protocol: 'input' scoring needs batch.labels")
        labels = batch.labels.to(logits.device)
        if labels.shape[-2:] != logits.shape[-2:]:
            raise ValueError(f"update_for_protocol: logits {tuple(logits.shape[-2:])} and labels "
                             f"{tuple(labels.shape[-2:])} differ in size; 'input' scores at the network resolution")
        metric.update(logits.argmax(1), labels, image_ids=ids)
        return
    if dataset is None:
        raise ValueError("update_for_protocol: 'native' scoring needs the dataset (to read original labels)")
    for i in range(logits.shape[0]):
        index = int(batch.indices[i])
        label = torch.from_numpy(dataset.read_label(index).astype(np.int64)).to(logits.device)  # H x W
        size = tuple(int(s) for s in batch.orig_sizes[i])
        if tuple(label.shape) != size:
            raise ValueError(f"update_for_protocol: original label of image {index} is {tuple(label.shape)}, "
                             f"batch.orig_sizes says {size}")
        frame = logits[i:i + 1].float()
        if getattr(dataset, "resize_mode", "square") == "pad" and dataset.resolution is not None:
            frame = unpad(frame, size, dataset.resolution)  # drop the bottom/right padding
        up = F.interpolate(frame, size=size, mode="bilinear", align_corners=False)
        metric.update(up.argmax(1), label.unsqueeze(0), image_ids=ids[i:i + 1])


def protocol_provenance(protocol: str, warp: str | None = None) -> dict[str, Any]:
    """Provenance entries describing the scoring protocol (merge into a record's provenance)."""
    return {"protocol": check_protocol(protocol), "protocol_description": PROTOCOLS[protocol], "warp": warp}
