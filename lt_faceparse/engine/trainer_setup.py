"""Building what a training run needs from its config: determinism flags, the datasets, the model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from lt_faceparse.data import build_dataset
from lt_faceparse.data.synthetic import ensure_synthface
from lt_faceparse.engine.config import ConfigError, expand_path
from lt_faceparse.engine.distributed import DistInfo, rank0_first_then_each_node
from lt_faceparse.errors import DataError, SplitNotFound
from lt_faceparse.models import build_model, check_model, prepare_for_training


def set_determinism(config: dict[str, Any], device: torch.device) -> None:
    """``deterministic: true``: deterministic algorithms, no cuDNN autotuning; else autotuning on CUDA."""
    if config["deterministic"]:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        if not torch.are_deterministic_algorithms_enabled():
            torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def warped_size(config: dict[str, Any]) -> int:
    """Side of the tanh-warped frame: the network input resolution."""
    resolution = config["data"]["resolution"]
    if config["data"]["warp"] is not None and resolution is None:
        raise ConfigError("data.warp needs data.resolution (the side of the warped frame)")
    return resolution or 512


def training_datasets(config: dict[str, Any], info: DistInfo, train_dataset: Any, val_dataset: Any) -> tuple[Any, Any]:
    """(train, val or None): the given datasets, else those ``config["data"]`` names (val never holds test images)."""
    data = config["data"]
    if train_dataset is None:

        root = _data_root(data, info)
        common = dict(resolution=data["resolution"], merge=data["merge"])
        train_dataset = build_dataset(data["dataset"], root, data["train_split"], train=data["augment"],
                                      flip=data["flip"], **common)
        if val_dataset is None and data["val_split"] is not None:
            val_dataset = build_dataset(data["dataset"], root, data["val_split"], train=False, **common)
            check_not_test(val_dataset, build_dataset, data["dataset"], root, common)
    if val_dataset is not None and getattr(val_dataset, "split", None) == "test":
        raise ConfigError("validation during training never uses the test split")
    if val_dataset is not None and val_dataset.taxonomy.name != train_dataset.taxonomy.name:
        raise ConfigError(f"train taxonomy {train_dataset.taxonomy.name!r} != val taxonomy "
                          f"{val_dataset.taxonomy.name!r}")
    return train_dataset, val_dataset


def _data_root(data: dict[str, Any], info: DistInfo) -> Path:
    root = expand_path(data["root"])
    if data["synthetic"] is None:
        return root

    spec = dict(fmt=data["dataset"], **data["synthetic"])
    # generated once on a shared filesystem, once per node on node-local ones; never twice at once
    return Path(rank0_first_then_each_node(lambda: ensure_synthface(root, **spec), info))


def check_not_test(val_dataset: Any, build_dataset: Any, name: str, root: Path, common: dict[str, Any]) -> None:
    """Refuse a validation split that holds test images (Helen's ``val`` falls back to ``test``
    when the tree has no ``val.txt``). A tree without a test split passes; a test split that exists
    but cannot be opened is an error (the guard is never switched off silently)."""

    try:
        test = build_dataset(name, root, "test", train=False, **common)
    except SplitNotFound:
        return  # no test split in this tree: nothing to overlap with
    shared = set(val_dataset.names) & set(test.names)
    if shared:
        raise DataError(root, f"the {val_dataset.split!r} split shares {len(shared)} of {len(val_dataset)} images "
                              f"with the test split; validation during training never uses test images "
                              f"(set data.val_split=null to train without validation)")


def build_training_model(config: dict[str, Any], info: DistInfo, num_classes: int,
                         taxonomy_name: str) -> tuple[nn.Module, dict[str, Any]]:
    """The model of ``config["model"]`` for ``num_classes`` classes, checked against the model contract
    (:mod:`lt_faceparse.models`), on the device; and the kwargs that rebuild it."""
    spec = config["model"]
    kwargs = dict(spec["kwargs"])
    if kwargs.setdefault("num_classes", num_classes) != num_classes:
        raise ConfigError(f"model.kwargs.num_classes={kwargs['num_classes']} but taxonomy "
                          f"{taxonomy_name!r} has {num_classes} classes")
    model = build_model(spec["name"], **kwargs)
    try:
        check_model(model, spec["name"])
        prepare_for_training(model, spec["name"], formulation=config["formulation"])
    except TypeError as err:
        raise ConfigError(str(err)) from None
    if config["sync_bn"] and info.distributed:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(info.device)
    if config["channels_last"]:
        model.to(memory_format=torch.channels_last)
    return model, dict(model.build_kwargs)
