"""Decoupled classifier learning (Kang et al., ICLR 2020): cRT and LWS as a second training stage.

After the normal schedule (and precise BN), ``longtail.retrain_classifier`` re-balances only the
classifier (:func:`lt_faceparse.longtail.classifier.find_classifier`):

- **cRT** (``lws: false``): every other parameter frozen, the classifier re-initialised (seeded),
  then trained for ``epochs`` epochs with balanced image sampling;
- **LWS** (``lws: true``): the classifier keeps its weights and is frozen too; one scale per class
  f_c (initialised at 1) is learned, w_c ← f_c · w_c (the bias is not scaled; see
  :class:`~lt_faceparse.longtail.classifier.ClassVectorScaling`).

Choices made here: the whole model stays in eval mode during the stage (BatchNorm statistics and
dropout frozen: the representation is exactly the first stage's, and every tensor but the
classifier's stays bit for bit the same); the loss is the model's own (SegFace: CE + Dice); the
optimizer is the run's AdamW at the run's base learning rate, without milestones (no weight decay
on the LWS scales); images are
loaded with the run's augmentation. Balanced sampling draws ``len(train split)`` images per epoch:

- ``class_balanced`` (class-aware sampling): per draw a class uniformly among those present in
  some training image, then uniformly one image that contains it;
- ``repeat_factor``: LVIS repeat factors r_c = max(1, sqrt(t / f_c)) with t = ``threshold``, images
  drawn with probability proportional to their factor.

The stage is a pure function of the first stage's final weights and the seed, so a resumed run
(which restarts from the last epoch's checkpoint) repeats it exactly: it is idempotent. Under
torchrun every rank runs the same stage on the same draws (no collectives), so the ranks agree.
The learned LWS scales are kept in the weight file's metadata
(``longtail.classifier_stage.scales``) and re-applied when it is loaded for evaluation or parsing
(:func:`lt_faceparse.longtail.posthoc.apply_posthoc`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from lt_faceparse.data import make_loader
from lt_faceparse.longtail.classifier import ClassVectorScaling, find_classifier
from lt_faceparse.longtail.repeat_factor import class_repeat_factors, image_repeat_factors

SEED_OFFSET = 7_919  # the stage's draws and re-initialisation: seed + this (apart from the first stage's)


def class_balanced_draws(presence: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` image indices: per draw a class uniformly among the present ones, then one of its images."""
    present = np.flatnonzero(presence.any(axis=0))
    holders = [np.flatnonzero(presence[:, c]) for c in present]
    classes = rng.integers(0, len(present), size=count)
    return np.array([holders[c][rng.integers(0, len(holders[c]))] for c in classes], dtype=np.int64)


def repeat_factor_draws(presence: np.ndarray, threshold: float, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` image indices drawn with probability proportional to their LVIS repeat factor."""
    share = presence.mean(axis=0)
    factors = image_repeat_factors(presence, class_repeat_factors(share, threshold))
    return rng.choice(len(factors), size=count, replace=True, p=factors / factors.sum())


def stage_draws(spec: dict[str, Any], presence: np.ndarray, epoch: int, seed: int) -> np.ndarray:
    """The image indices of one epoch of the stage (deterministic in ``seed`` and ``epoch``)."""
    rng = np.random.default_rng([seed + SEED_OFFSET, epoch])
    if spec["sampler"] == "class_balanced":
        return class_balanced_draws(presence, len(presence), rng)
    return repeat_factor_draws(presence, spec["threshold"], len(presence), rng)


def retrain_classifier(model: nn.Module, runner: nn.Module, dataset: Any, presence: np.ndarray,
                       spec: dict[str, Any], *, optim: dict[str, Any], batch_size: int, seed: int,
                       device: torch.device, num_workers: int = 0) -> dict[str, Any]:
    """Run the second stage on ``model`` in place (``runner``: what maps a batch to logits, e.g. the
    trainer's :class:`~lt_faceparse.engine.runner.BatchRunner`; ``dataset``: the training split wrapped
    so that ``set_epoch(e)`` fixes its augmentation draws, e.g.
    :class:`~lt_faceparse.engine.sampling.EpochSeededDataset`; ``presence``: its N x K presence table;
    ``optim``: the run's ``optim`` section). Returns what provenance records (``classifier_stage``);
    with LWS the scaling stays attached to ``model``."""
    classifier = find_classifier(model)
    frozen = {name: p.requires_grad for name, p in model.named_parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    scaling = None
    if spec["lws"]:
        scaling = ClassVectorScaling(classifier, presence.shape[1], learn_scales=True)
        trained = [scaling.scales]
    else:
        classifier.reset_parameters(seed + SEED_OFFSET)
        trained = classifier.parameters()
        for p in trained:
            p.requires_grad_(True)
    # AdamW as in the run (not fused); no weight decay on LWS scales (it would pull them towards 0)
    optimizer = torch.optim.AdamW(trained, lr=optim["lr"], betas=tuple(optim["betas"]),
                                  weight_decay=0.0 if spec["lws"] else optim["weight_decay"])
    runner.eval()  # frozen BatchNorm statistics and dropout: only the classifier changes
    losses = []
    for epoch in range(spec["epochs"]):
        dataset.set_epoch(epoch)
        draws = stage_draws(spec, presence, epoch, seed).tolist()
        loader = make_loader(dataset, batch_size, shuffle=False, num_workers=num_workers, sampler=draws,
                             drop_last=True, seed=seed + SEED_OFFSET + epoch)
        total, steps = 0.0, 0
        for batch in loader:
            batch = batch.to(device)
            loss = model.loss(runner(batch.images, batch.landmarks), batch.labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total, steps = total + float(loss.detach()), steps + 1
        losses.append(total / max(steps, 1))
    for name, p in model.named_parameters():
        p.requires_grad_(frozen[name])
    if scaling is not None:
        scaling.scales.requires_grad_(False)
    return {"kind": "LWS" if spec["lws"] else "cRT", "classifier": classifier.kind, "epoch_losses": losses,
            "images_per_epoch": len(presence),
            "scales": None if scaling is None else [float(v) for v in scaling.scales.detach().cpu()]}
