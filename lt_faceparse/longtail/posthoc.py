"""Post-hoc remedies at evaluation: τ-normalisation, logit adjustment and flip test-time augmentation.

- **τ-normalisation** (Kang et al., ICLR 2020): each class vector of the model's classifier w_c
  becomes w_c / ||w_c||^τ, bias kept (:class:`lt_faceparse.longtail.classifier.ClassVectorScaling`;
  for SegFace the image-dependent class vectors, per image). A weight file trained with LWS carries
  its class scales (``metadata["longtail"]["classifier_stage"]["scales"]``): they are re-applied
  here whenever the metadata is given, before τ-normalisation.

- **Logit adjustment** (Menon et al., ICLR 2021, post-hoc variant): predict argmax_c (z_c − τ log π_c)
  with an ordinarily trained model; π = the pixel prior of the training split. With target priors π'
  (the pixel priors of the images the model will see): argmax_c (z_c − τ (log π_c − log π'_c)), at
  τ = 1 Bayes' rule for a known label shift from π to π' (Saerens et al., Neural Computation 2002);
  no target = a uniform π', Menon et al.'s balanced form.
- **Flip TTA**: average the logits of the image and of its mirror image, the latter mirrored back
  and with its left/right class channels swapped (``taxonomy.flip_pairs``).

Both wrap the model (:class:`PosthocModel`), so every consumer (evaluation, ``FaceParser``, the
tanh-warp runner) sees adjusted logits; the flip happens in the model's own input frame. Order:
TTA averages the raw logits first, then the adjustment subtracts τ log π.

Where the priors come from (:func:`posthoc_priors`, first that applies): an explicit
``class_frequencies.csv``; the priors stored in the weight file's metadata by a training run that
used them (``metadata["longtail"]["priors"]``); the training split of the evaluated dataset,
counted (and cached) by :func:`lt_faceparse.longtail.priors.split_statistics`.

Records state the options under ``provenance.posthoc`` (``{"tau_norm": τ or None,
"logit_adjust": τ or None, "tta": "flip" or None, "priors": source or None, "target_priors":
source or None (uniform)}``); since they change what a row's predictions
are, the leaderboard groups rows by them (labels: :func:`lt_faceparse.records.posthoc_label`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from lt_faceparse.errors import DataError
from lt_faceparse.longtail.classifier import ClassVectorScaling, find_classifier
from lt_faceparse.longtail.priors import ClassPriors, read_priors_csv, split_statistics
from lt_faceparse.taxonomy import Taxonomy, get_taxonomy

TTA_MODES = ("flip",)


def flip_permutation(taxonomy: Taxonomy) -> torch.Tensor:
    """K ids: channel c of a mirrored prediction holds the class mirror(c) (an involution)."""
    return torch.as_tensor(taxonomy.flip_lut()[: taxonomy.num_classes].astype(np.int64))


def flip_logits_back(logits: torch.Tensor, permutation: torch.Tensor) -> torch.Tensor:
    """Logits of a mirrored image (B x K x H x W) mapped to the original frame: mirror the columns,
    swap the left/right channels."""
    return logits.flip(-1).index_select(1, permutation.to(logits.device))


class PosthocModel(nn.Module):
    """``model`` with flip TTA and/or logit adjustment applied to its logits (see module docstring).

    ``log_prior``: K values log π_c (log π_c − log π'_c towards target priors), needed when
    ``logit_adjust`` (τ) is given.
    """

    def __init__(self, model: nn.Module, taxonomy: Taxonomy | str, *, logit_adjust: float | None = None,
                 log_prior: Any = None, tta: str | None = None):
        super().__init__()
        taxonomy = get_taxonomy(taxonomy)
        if tta not in (None, *TTA_MODES):
            raise ValueError(f"tta must be None or one of {TTA_MODES}, got {tta!r}")
        if logit_adjust is not None and (log_prior is None or not np.isfinite(float(logit_adjust))):
            raise ValueError("logit adjustment needs a finite tau and the log priors")
        self.model = model
        self.tta = tta
        self.logit_adjust = None if logit_adjust is None else float(logit_adjust)
        self.register_buffer("permutation", flip_permutation(taxonomy), persistent=False)
        offset = torch.zeros(taxonomy.num_classes)
        if self.logit_adjust is not None:
            log_prior = torch.as_tensor(np.asarray(log_prior, dtype=np.float64))
            if log_prior.shape != (taxonomy.num_classes,) or not torch.isfinite(log_prior).all():
                raise ValueError(f"log priors must be {taxonomy.num_classes} finite values")
            offset = (-self.logit_adjust * log_prior).float()
        self.register_buffer("offset", offset.view(1, -1, 1, 1), persistent=False)  # − τ log π

    def forward(self, images: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        logits = self.model(images, *args, **kwargs)
        if self.tta == "flip":
            mirrored = self.model(images.flip(-1), *args, **kwargs)
            logits = (logits + flip_logits_back(mirrored, self.permutation)) / 2
        if self.logit_adjust is not None:
            logits = logits + self.offset.to(logits.dtype)
        return logits

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.model.loss(logits, target)


def posthoc_info(logit_adjust: float | None, tta: str | None, priors: ClassPriors | None,
                 tau_norm: float | None = None, target: ClassPriors | None = None) -> dict[str, Any]:
    """The ``posthoc`` provenance entry (``target_priors`` only when logit adjustment has a target)."""
    info = {"tau_norm": tau_norm, "logit_adjust": logit_adjust, "tta": tta,
            "priors": None if logit_adjust is None or priors is None else priors.source,
            "prior_unit": None if logit_adjust is None else "pixels"}
    if logit_adjust is not None and target is not None:
        info["target_priors"] = target.source
    return info


def posthoc_priors(taxonomy: Taxonomy, *, priors_file: str | Path | ClassPriors | None = None,
                   metadata: dict[str, Any] | None = None, train_split: Any = None) -> ClassPriors:
    """The priors for post-hoc logit adjustment (see module docstring for the order).

    ``priors_file``: a ``class_frequencies.csv`` (or :class:`ClassPriors` already read);
    ``train_split``: a dataset, or a zero-argument callable returning one (opened only if needed).
    """
    if isinstance(priors_file, ClassPriors):
        priors_file.check_taxonomy(taxonomy)
        return priors_file
    if priors_file is not None:
        return read_priors_csv(priors_file, taxonomy)
    stored = ((metadata or {}).get("longtail") or {}).get("priors")
    if isinstance(stored, dict):
        priors = ClassPriors.from_dict(stored, "weight-file metadata longtail.priors")
        priors.check_taxonomy(taxonomy, "weight-file metadata longtail.priors")
        return ClassPriors(priors.class_names, priors.pixel_counts, priors.images_with_class, priors.num_images,
                           f"weight-file metadata ({priors.source})")
    if train_split is None:
        raise DataError(None, "logit adjustment needs class priors: pass a class_frequencies.csv (--priors), "
                              "a weight file trained with priors, or a dataset root with a train split")
    dataset = train_split() if callable(train_split) else train_split
    return split_statistics(dataset).priors


def attach_class_scaling(model: nn.Module, num_classes: int, *, tau_norm: float | None = None,
                         metadata: dict[str, Any] | None = None) -> None:
    """Hook the weight file's LWS scales and/or τ-normalisation onto ``model``'s classifier (in place;
    nothing when neither applies)."""
    stage = ((metadata or {}).get("longtail") or {}).get("classifier_stage") or {}
    scales = stage.get("scales")
    if scales is None and not tau_norm:
        return
    ClassVectorScaling(find_classifier(model), num_classes, scales=scales, tau=tau_norm or 0.0)


def apply_posthoc(model: nn.Module, taxonomy: Taxonomy | str, *, logit_adjust: float | None = None,
                  tta: str | None = None, priors_file: str | Path | ClassPriors | None = None,
                  metadata: dict[str, Any] | None = None, train_split: Any = None,
                  tau_norm: float | None = None,
                  target_priors: str | Path | ClassPriors | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """``(model wrapped for the asked post-hoc options, or unchanged; the provenance entry)``.

    Priors are looked up (:func:`posthoc_priors`) only when ``logit_adjust`` is given;
    ``target_priors`` (a ``class_frequencies.csv`` or :class:`ClassPriors`) makes the adjustment a
    label-shift correction towards them. The LWS scales of ``metadata`` and ``tau_norm`` are hooked
    onto ``model`` itself (see module docstring).
    """
    taxonomy = get_taxonomy(taxonomy)
    if target_priors is not None and logit_adjust is None:
        raise ValueError("target priors apply to logit adjustment: give its tau too (--logit-adjust TAU)")
    attach_class_scaling(model, taxonomy.num_classes, tau_norm=tau_norm, metadata=metadata)
    priors = target = log_prior = None
    if logit_adjust is not None:
        priors = posthoc_priors(taxonomy, priors_file=priors_file, metadata=metadata, train_split=train_split)
        log_prior = priors.log_pixel_prior()
        if target_priors is not None:
            target = posthoc_priors(taxonomy, priors_file=target_priors)
            log_prior = log_prior - target.log_pixel_prior()
    info = posthoc_info(logit_adjust, tta, priors, tau_norm, target)
    if logit_adjust is None and tta is None:
        return model, info
    wrapped = PosthocModel(model, taxonomy, logit_adjust=logit_adjust, log_prior=log_prior, tta=tta)
    param = next(model.parameters(), None)
    if param is not None:
        wrapped.to(param.device)
    return wrapped.train(model.training), info
