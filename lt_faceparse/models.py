"""The model contract and the model registry: names -> constructors, imported lazily.

Every registered model is an ``nn.Module`` that follows :class:`FaceParsingModel`:

- ``forward(images)``: B x 3 x H x W ImageNet-normalised images -> B x K x H x W logits, K the
  taxonomy's classes (``num_classes``), at the input's H x W;
- ``loss(logits, target)``: a scalar tensor; ``target`` is B x H x W class ids, 255 ignored;
- ``build_kwargs``: the constructor keyword arguments that rebuild it (saved in the weight file).

Optional hooks, each found by :func:`model_capabilities` (the one place that inspects a model):

- ``forward(images, return_extras=True) -> (logits, extras)``: extra outputs. SegFace's extras hold
  ``token_masks`` (B x K x H x W) and ``attn`` (per decoder layer, B x heads x K x h*w): the token
  figures of :mod:`lt_faceparse.reporting.attention` need them;
- ``loss(logits, target, extras)``: the loss also trains extra heads (BiSeNet's auxiliary heads); the
  trainer then asks ``forward`` for the extras in training mode;
- ``formulation`` (settable attribute): the exact formulation the config key ``formulation`` picks
  (SegFace; :mod:`segface.formulation`);
- ``criterion``: an ``nn.CrossEntropyLoss`` (ignore index 255, unweighted) or a loss with a settable
  ``pixel_loss`` term; the long-tail loss remedies replace that term (:mod:`lt_faceparse.longtail.model_loss`).

Post-hoc options (flip TTA, logit adjustment) and the RoI tanh-warp wrap any model that follows the
contract. The core never imports a model module at import time: ``build_model("segface", ...)``
imports ``segface`` only when asked.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Protocol, runtime_checkable

import torch
import torch.nn as nn

_REGISTRY: dict[str, str | Callable[..., nn.Module]] = {
    "segface": "segface.model:SegFace",
    "bisenet": "baselines.bisenet:BiSeNet",
    "fcn": "baselines.fcn:FCN",
    "segformer": "baselines.segformer_head:SegFormerHead",
    # a few-thousand-parameter LayerNorm-only parser for tests and CPU smoke configs
    "tiny": "lt_faceparse.engine.tiny:TinyParser",
}


@runtime_checkable
class FaceParsingModel(Protocol):
    """What every registered model provides (see the module docstring for the optional hooks)."""

    build_kwargs: dict[str, Any]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """B x 3 x H x W normalised images -> B x K x H x W logits."""

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar training loss of ``logits`` against B x H x W class ids (255 ignored)."""


@dataclass(frozen=True)
class ModelCapabilities:
    """The optional hooks a model has (see the module docstring)."""

    returns_extras: bool  # forward(images, return_extras=True) -> (logits, extras)
    loss_takes_extras: bool  # loss(logits, target, extras): extra heads are trained
    formulation: bool  # a settable ``formulation`` (SegFace's exact formulations)
    pixel_loss: bool  # ``criterion.pixel_loss``: a replaceable per-pixel term inside the model's loss


def check_model(model: Any, name: str | None = None) -> ModelCapabilities:
    """The model's optional hooks; ``TypeError`` naming the first missing member of :class:`FaceParsingModel`."""
    label = f"model {name!r}" if name else f"model {type(model).__name__}"
    if not isinstance(model, FaceParsingModel):
        missing = next(m for m in ("forward", "loss", "build_kwargs") if not hasattr(model, m))
        raise TypeError(f"{label} lacks {missing!r} (the model contract: see lt_faceparse.models)")
    if not isinstance(model.build_kwargs, dict):
        raise TypeError(f"{label}: build_kwargs must be a dict of constructor keyword arguments")
    return model_capabilities(model)


def model_capabilities(model: Any) -> ModelCapabilities:
    """The optional hooks of ``model`` (any object; missing members count as absent)."""
    return ModelCapabilities(returns_extras=_takes(getattr(model, "forward", None), "return_extras"),
                             loss_takes_extras=_takes(getattr(model, "loss", None), "extras"),
                             formulation=hasattr(model, "formulation"),
                             pixel_loss=hasattr(getattr(model, "criterion", None), "pixel_loss"))


def _takes(function: Callable | None, parameter: str) -> bool:
    if function is None:
        return False
    try:
        return parameter in inspect.signature(function).parameters
    except (TypeError, ValueError):  # a builtin or C function without a signature
        return False


def prepare_for_training(model: Any, name: str, *, formulation: str = "auto") -> None:
    """Apply the config key ``formulation`` (``"auto"`` leaves the model as built); ``TypeError`` for a model
    with a single formulation asked for another."""
    if formulation == "auto":
        return
    if not model_capabilities(model).formulation:
        raise TypeError(f"formulation={formulation!r}: model {name!r} has only one")
    model.formulation = formulation


def register_model(name: str, target: str | Callable[..., nn.Module], *, overwrite: bool = False) -> None:
    """Register a model constructor under ``name`` (the config key ``model.name``).

    ``target`` is ``"module.path:Callable"`` (imported on first use, so registering costs no import) or
    the callable itself. It is called with the config's ``model.kwargs`` plus ``num_classes`` and must
    return an ``nn.Module`` that follows :class:`FaceParsingModel` (checked by :func:`check_model` when
    a run builds it). Registering another target under a taken name needs ``overwrite=True``.
    For a new model in this repository, add one line to the registry above instead.
    """
    if name in _REGISTRY and not overwrite and _REGISTRY[name] is not target:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = target


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def resolve_model(name: str) -> Callable[..., nn.Module]:
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; registered: {list_models()}") from None
    if callable(target):
        return target
    module_name, _, attr = target.partition(":")
    return getattr(importlib.import_module(module_name), attr)


def build_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model by name with keyword arguments (e.g. ``num_classes``, ``backbone``)."""
    return resolve_model(name)(**kwargs)
