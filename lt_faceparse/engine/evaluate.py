"""Evaluation: score a parser on a whole split and produce a :class:`~lt_faceparse.records.ResultRecord`.

Every image is scored exactly once, on one machine or many: each rank takes a contiguous, unpadded
shard of the split (:class:`~lt_faceparse.engine.distributed.ShardSampler`), the confusion matrices
are summed across ranks and the per-image counts gathered, and the number of scored images is
checked against the split size. The confusion matrix is global over the split (not a mean of
per-image scores); scores follow :func:`lt_faceparse.metrics.scores.scores_from_confusion`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
import torch.nn as nn
from rich.progress import Progress

from lt_faceparse.data import build_dataset, dataset_class, make_loader
from lt_faceparse.engine.config import ConfigError
from lt_faceparse.engine.distributed import (all_reduce_sum, barrier, current_rank_world, init_distributed,
                                             shutdown_distributed)
from lt_faceparse.engine.runner import BatchRunner
from lt_faceparse.engine.sampling import ShardSampler
from lt_faceparse.errors import DataError
from lt_faceparse.longtail.posthoc import apply_posthoc
from lt_faceparse.metrics import ConfusionMatrix
from lt_faceparse.metrics.protocol import protocol_provenance, update_for_protocol
from lt_faceparse.records import build_record, save_record
from lt_faceparse.weights import load_model, taxonomy_of

if TYPE_CHECKING:
    from lt_faceparse.longtail.priors import ClassPriors
    from lt_faceparse.records import ResultRecord


def evaluate_model(model: nn.Module, dataset, *, protocol: str = "input", batch_size: int = 8,
                   device: str | torch.device = "cpu", provenance: dict[str, Any] | None = None,
                   num_workers: int = 0, warp: str | None = None, warped_size: int = 512,
                   show_progress: bool = True) -> ResultRecord:
    """Score ``model`` on every image of ``dataset`` and return the result record (on every rank).

    ``protocol``: ``"input"`` scores at the network input resolution against the batch labels;
    ``"native"`` upsamples logits to each image's original size and scores against the original
    label. ``warp="tanh"`` runs the model inside the RoI tanh-warp to a ``warped_size`` square (a
    :class:`BatchRunner` is used as given). Under ``torch.distributed`` every rank must call this;
    each scores its own shard.
    ``provenance`` entries override the ones filled in here (dataset, data_format, data_root
    (absolute; ``report`` reads the example images from it), split, merge, resolution, protocol,
    warp, num_params); :func:`lt_faceparse.records.build_record` adds the taxonomy, library version,
    git commit and time.
    """
    rank, world_size = current_rank_world()
    device = torch.device(device)
    runner = model if isinstance(model, BatchRunner) else BatchRunner(model, warp, warped_size)
    was_training = runner.training
    runner.eval().to(device)
    taxonomy = dataset.taxonomy
    metric = ConfusionMatrix(taxonomy.num_classes, ignore_index=taxonomy.ignore_index).to(device)
    sampler = ShardSampler(len(dataset), rank, world_size)
    loader = make_loader(dataset, batch_size, shuffle=False, num_workers=num_workers, sampler=sampler)

    seen = 0
    progress = Progress(disable=not (show_progress and rank == 0 and sys.stderr.isatty()))
    with progress, torch.inference_mode():
        task = progress.add_task(f"eval {getattr(dataset, 'split', '')}", total=len(loader))
        for batch in loader:
            batch = batch.to(device)
            logits = runner(batch.images, batch.landmarks)
            update_for_protocol(metric, logits.float(), batch, protocol, dataset=dataset)
            seen += len(batch)
            progress.advance(task)
    runner.train(was_training)

    scored = int(all_reduce_sum(torch.tensor([seen], dtype=torch.int64, device=_collective_device(device))).item())
    if scored != len(dataset):
        raise RuntimeError(f"evaluation scored {scored} images but the split has {len(dataset)}")
    confusion = metric.compute().cpu()
    per_image = metric.per_image_stats()
    if per_image.num_images != len(dataset):
        raise RuntimeError(f"per-image statistics hold {per_image.num_images} images, the split has {len(dataset)}")
    names = getattr(dataset, "names", None)
    root = getattr(dataset, "root", None)
    info = {
        "dataset": getattr(dataset, "source_dataset", getattr(dataset, "dataset_name", None)),
        "data_format": getattr(dataset, "dataset_name", None),
        "data_root": None if root is None else str(Path(root).resolve()),
        "split": getattr(dataset, "split", None),
        "merge": getattr(dataset, "merge", None),
        "resolution": getattr(dataset, "resolution", None),
        **protocol_provenance(protocol, runner.warp),
        "num_params": sum(p.numel() for p in runner.model.parameters()),
        **(provenance or {}),
    }
    return build_record(confusion, taxonomy, info, per_image=per_image,
                        names=None if names is None else [names[i] for i in per_image.image_ids])


def evaluate_checkpoint(checkpoint: str | Path, dataset_name: str, root: str | Path, split: str,
                        protocol: str = "input", out_dir: str | Path | None = None, *,
                        merge: str | list[str] | None = None, resolution: int | None = None,
                        batch_size: int = 8, device: str = "auto", num_workers: int = 0,
                        provenance: dict[str, Any] | None = None, n_resamples: int = 1000,
                        seed: int = 0, logit_adjust: float | None = None, tta: str | None = None,
                        priors: str | Path | ClassPriors | None = None, tau_norm: float | None = None,
                        target_priors: str | Path | ClassPriors | None = None,
                        train_split: str = "train",
                        show_progress: bool = True) -> ResultRecord:
    """Load a weight file (``final.safetensors`` of a run, or any file of :mod:`lt_faceparse.weights`),
    score it on ``split`` of a dataset and, when ``out_dir`` is given, write the record there (rank 0).
    The one evaluation of a weight file on a split: ``eval``, the sweep and the benchmark all call it.

    ``resolution`` and ``merge`` default to what the weight file's metadata says, the RoI warp is the
    one the weights were trained in (metadata ``warp``; the record states it); the
    taxonomy comes from the weight file alone (a folder dataset is read in the model's class ids; its
    ``classes.txt``, when present, must list the same classes). ``n_resamples`` > 0 adds 95%
    percentile-bootstrap intervals over images (``seed``) to the record; 0 skips them. Works under
    ``torchrun`` (each rank scores a shard).

    Post-hoc options (:mod:`lt_faceparse.longtail.posthoc`): ``logit_adjust`` = τ subtracts τ log π
    from the logits, with the priors from ``priors`` (a ``class_frequencies.csv``), else from the
    weight file's metadata, else from the ``train_split`` under ``root``; with ``target_priors`` it
    subtracts τ (log π − log π') instead, a label-shift correction; ``tta="flip"`` averages
    the logits of the image and its mirror (left/right classes swapped); ``tau_norm`` = τ rescales the
    classifier's class vectors w_c to w_c / ||w_c||^τ (bias kept). The record states them in
    ``provenance.posthoc`` and the training remedies in ``provenance.longtail``.
    """
    if split not in ("val", "test"):
        raise ConfigError(f"split must be 'val' or 'test', got {split!r}")
    if n_resamples < 0:
        raise ConfigError(f"the number of bootstrap resamples must be 0 (none) or positive, got {n_resamples}")
    joined = not (dist.is_available() and dist.is_initialized())
    info = init_distributed(device)
    try:
        model, meta = load_model(checkpoint, map_location=info.device)
        taxonomy = taxonomy_of(meta, checkpoint)
        resolution = resolution if resolution is not None else meta["resolution"]
        merge = merge if merge is not None else meta.get("merge") or "segface"
        folder = dataset_class(dataset_name).dataset_name == "folder"
        dataset = build_dataset(dataset_name, root, split, resolution=resolution, merge=merge, train=False,
                                taxonomy=taxonomy if folder else None)
        if dataset.taxonomy.names != taxonomy.names:
            raise DataError(checkpoint, f"model predicts taxonomy {taxonomy.name!r} {taxonomy.names} but dataset "
                                        f"{dataset_name!r} uses {dataset.taxonomy.name!r} {dataset.taxonomy.names}")

        model, posthoc = apply_posthoc(
            model, taxonomy, logit_adjust=logit_adjust, tta=tta, priors_file=priors, metadata=meta, tau_norm=tau_norm,
            target_priors=target_priors,
            train_split=lambda: build_dataset(dataset_name, root, train_split, resolution=None, merge=merge,
                                              taxonomy=taxonomy if folder else None))
        kwargs = meta["model_kwargs"]
        prov = {
            "model": meta["model"],
            "backbone": kwargs.get("backbone"),
            "weights": str(checkpoint),
            "checkpoint_rule": meta.get("checkpoint_rule", "unknown"),
            "pretraining": meta.get("pretraining"),
            "source": meta.get("source"),
            "reported": False,
            "epochs": meta.get("epochs"),
            "longtail": meta.get("longtail"),
            "licence": meta.get("licence"),  # terms of a released model's weights (lt_faceparse.zoo)
            "posthoc": posthoc,
            **(provenance or {}),
        }
        record = evaluate_model(model, dataset, protocol=protocol, batch_size=batch_size, device=info.device,
                                provenance=prov, num_workers=num_workers, warp=meta.get("warp"),
                                warped_size=meta["resolution"] or 512, show_progress=show_progress)
        if n_resamples:
            record = record.with_bootstrap_ci(n_resamples=n_resamples, seed=seed)
        if out_dir is not None and info.is_main:
            save_record(record, out_dir)
        barrier()
        return record
    finally:
        if joined:
            shutdown_distributed()


def load_runner(checkpoint: str | Path, *,
                map_location: str | torch.device = "cpu") -> tuple[BatchRunner, dict[str, Any]]:
    """(the weight file's model as evaluation runs it, its metadata): inside the RoI warp the metadata
    names, warped to the weights' resolution, exactly as :func:`evaluate_checkpoint` scores it."""
    model, meta = load_model(checkpoint, map_location=map_location)
    return BatchRunner(model, meta.get("warp"), meta["resolution"] or 512).eval(), meta


def _collective_device(device: torch.device) -> torch.device:
    """Device for collective tensors: CUDA under NCCL, CPU otherwise."""
    return device if device.type == "cuda" else torch.device("cpu")
