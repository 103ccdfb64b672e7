"""Reorder the class channels of logits from a foreign numbering to a taxonomy's own ids."""

from __future__ import annotations

import torch
import torch.nn as nn

from lt_faceparse.taxonomy import get_taxonomy


def channel_order(taxonomy: str, numbering: str) -> list[int]:
    """``order[our_id]`` = the foreign id whose logits become our class ``our_id``.

    Raises ``ValueError`` unless the numbering is a permutation of the taxonomy's classes.
    """
    tax = get_taxonomy(taxonomy)
    k = tax.num_classes
    to_foreign = tax.lut_to(numbering)[:k].tolist()
    if sorted(to_foreign) != list(range(k)):
        raise ValueError(
            f"numbering {numbering!r} is not a permutation of the {k} classes of {tax.name!r}: "
            f"our id -> foreign id = {to_foreign}"
        )
    return to_foreign


class OutputNumbering(nn.Module):
    """B x K x H x W logits in ``numbering`` -> the same logits in ``taxonomy``'s ids.

    Holds no weights (the index is a non-persistent buffer), so a foreign state dict still loads
    strictly into the model that owns this layer.
    """

    def __init__(self, taxonomy: str, numbering: str) -> None:
        super().__init__()
        self.taxonomy = taxonomy
        self.numbering = numbering
        order = torch.tensor(channel_order(taxonomy, numbering), dtype=torch.long)
        self.register_buffer("order", order, persistent=False)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.index_select(1, self.order)

    def extra_repr(self) -> str:
        return f"{self.numbering} -> {self.taxonomy}"
