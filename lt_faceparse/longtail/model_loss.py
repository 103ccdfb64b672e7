"""How a loss remedy combines with a model's own loss.

Every registered model's loss has one per-pixel cross-entropy term; a remedy replaces exactly
that term and leaves the rest of the model's loss as it is:

- **SegFace, FCN, SegFormer** (``0.5 CE + 0.5 Dice``, :class:`segface.loss.CEDiceLoss`): the remedy
  replaces the CE term; the soft Dice term and both weights are kept.
- **BiSeNet with ``loss="ce"``** (plain CE on the main head and on each auxiliary head): the remedy
  replaces CE on every head; the auxiliary heads keep their ``aux_weight``.
- **BiSeNet with ``loss="ohem"``** (the default; :class:`baselines.ohem.OhemCrossEntropy` on every
  head): OHEM still chooses the hard pixels from the model's plain softmax (true-class probability
  below 0.7, at least pixels / 16 of them), and the remedy's per-pixel loss is averaged over those
  pixels instead of plain CE. Hard-pixel mining and the remedy thus compose: mining decides *which*
  pixels count, the remedy *how much* each one costs. (Ignored pixels are never among them.)
- **tiny** (plain CE): replaced by the remedy.

A criterion declares a replaceable CE term with a ``pixel_loss`` attribute (None = plain CE);
plain ``nn.CrossEntropyLoss`` criteria (no class weights, ignore 255) are replaced as a whole. A
model whose loss has neither is refused with an error naming ``longtail.loss``.
"""

from __future__ import annotations

from typing import Any

import torch.nn as nn

from lt_faceparse.longtail.class_weights import class_weights
from lt_faceparse.longtail.focal import FocalLoss
from lt_faceparse.longtail.logit_adjusted import LogitAdjustedLoss
from lt_faceparse.longtail.pixel_loss import PixelLoss
from lt_faceparse.longtail.priors import ClassPriors
from lt_faceparse.longtail.seesaw import SeesawLoss
from lt_faceparse.longtail.spec import loss_label
from lt_faceparse.longtail.weighted_ce import WeightedCrossEntropy
from lt_faceparse.models import model_capabilities
from lt_faceparse.taxonomy import IGNORE_INDEX


def build_pixel_loss(spec: dict[str, Any], priors: ClassPriors | None, num_classes: int) -> PixelLoss:
    """The remedy of a canonical ``longtail.loss`` mapping (see :mod:`lt_faceparse.longtail.spec`).

    ``priors`` are needed by ``weighted_ce``, ``focal`` with weights and ``logit_adjusted``.
    """
    name = spec["name"]

    def needed() -> ClassPriors:
        if priors is None:
            raise ValueError(f"longtail.loss {name!r} needs class priors")
        if priors.num_classes != num_classes:
            raise ValueError(f"class priors have {priors.num_classes} classes, the model {num_classes}")
        return priors

    if name == "weighted_ce":
        loss: PixelLoss = WeightedCrossEntropy(class_weights(spec["weights"], needed().counts(spec["counts"]),
                                                             spec["beta"]))
    elif name == "focal":
        alpha = None if spec["weights"] == "none" else class_weights(spec["weights"], needed().counts(spec["counts"]),
                                                                      spec["beta"])
        loss = FocalLoss(spec["gamma"], alpha)
    elif name == "logit_adjusted":
        loss = LogitAdjustedLoss(needed().log_pixel_prior(), spec["tau"])
    elif name == "seesaw":
        loss = SeesawLoss(num_classes, spec["p"], spec["q"])
    else:
        raise ValueError(f"no loss remedy called {name!r}")
    loss.label = loss_label(spec)
    return loss


def attach_loss_remedy(model: nn.Module, remedy: PixelLoss) -> str:
    """Put ``remedy`` in place of the CE term of ``model``'s loss; return how it combines (for records).

    Raises ``ValueError`` for a model whose loss has no replaceable cross-entropy term.
    """
    capabilities = model_capabilities(model)
    criterion = getattr(model, "criterion", None)
    heads = " on the main head and on each auxiliary head" if capabilities.loss_takes_extras else ""
    if capabilities.pixel_loss:
        criterion.pixel_loss = remedy
        return f"{type(criterion).__name__}: {criterion.pixel_loss_role}{heads}"
    if isinstance(criterion, nn.CrossEntropyLoss) and criterion.weight is None \
            and criterion.ignore_index == IGNORE_INDEX and criterion.label_smoothing == 0.0:
        model.criterion = remedy
        return f"replaces the model's cross-entropy{heads}"
    raise ValueError(f"config key longtail.loss: model {type(model).__name__} has no replaceable cross-entropy term "
                     "(its `criterion` must be an nn.CrossEntropyLoss or declare `pixel_loss`; see "
                     "lt_faceparse.longtail.model_loss)")
