"""The unit of data flowing from loaders to models and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import torch


@dataclass
class Sample:
    """One face-parsing example after transforms.

    image:      3 x H x W float32, ImageNet-normalised (network input)
    label:      H x W int64 class ids (255 = ignore), or None for unlabeled images
    name:       file stem, unique within its split
    orig_size:  (height, width) of the original label map (image size when unlabeled), so that
                predictions can be mapped back for ``native`` scoring
    landmarks:  N x 2 float32 (x, y) in the *transformed* image's pixel frame, or None
    index:      position in its dataset
    """

    image: torch.Tensor
    label: torch.Tensor | None
    name: str
    orig_size: tuple[int, int]
    landmarks: torch.Tensor | None = None
    index: int = -1
    taxonomy: str = ""


@dataclass
class Batch:
    """A collated list of :class:`Sample` (what DataLoaders yield)."""

    images: torch.Tensor  # B x 3 x H x W
    labels: torch.Tensor | None  # B x H x W int64
    names: list[str]
    orig_sizes: torch.Tensor  # B x 2 (height, width) int64
    indices: torch.Tensor  # B int64
    landmarks: torch.Tensor | None = None  # B x N x 2
    taxonomy: str = ""
    extras: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return self.images.shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Batch":
        move = lambda t: None if t is None else t.to(device, non_blocking=non_blocking)  # noqa: E731
        return replace(self, images=move(self.images), labels=move(self.labels),
                       landmarks=move(self.landmarks))

    def pin_memory(self) -> "Batch":
        pin = lambda t: None if t is None else t.pin_memory()  # noqa: E731
        return replace(self, images=pin(self.images), labels=pin(self.labels), landmarks=pin(self.landmarks))


def collate_samples(samples: Sequence[Sample]) -> Batch:
    """Stack samples of equal image size into a :class:`Batch`."""
    if not samples:
        raise ValueError("collate_samples: empty batch")
    labels = None
    if all(s.label is not None for s in samples):
        labels = torch.stack([s.label for s in samples])
    landmarks = None
    if all(s.landmarks is not None for s in samples):
        landmarks = torch.stack([s.landmarks for s in samples])
    return Batch(
        images=torch.stack([s.image for s in samples]),
        labels=labels,
        names=[s.name for s in samples],
        orig_sizes=torch.tensor([list(s.orig_size) for s in samples], dtype=torch.int64),
        indices=torch.tensor([s.index for s in samples], dtype=torch.int64),
        landmarks=landmarks,
        taxonomy=samples[0].taxonomy,
    )
