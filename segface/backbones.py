"""Image encoders returning four feature maps at strides 4, 8, 16 and 32.

Torchvision backbones hold exactly the modules the release keeps (``Sequential(*children()[:-1])``
of the torchvision model, or its ``.features`` for MobileNetV3 / EfficientNetV2) under their
torchvision names, so parameter counts and checkpoints match the release. ``forward`` runs only the
steps up to the deepest tapped stage: Swin's final ``norm`` is held (it is in the release's
weights and in the paper's parameter count) but never run.

``timm/<name>`` builds any timm model with ``features_only=True`` and keeps the deepest feature
at each of the strides 4/8/16/32.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from lt_faceparse.pretrained import pretrained_file_errors, timm_pretrained_file, torchvision_state


@dataclass(frozen=True)
class TorchvisionSpec:
    """How one torchvision model becomes a four-stage backbone.

    builder:          torchvision model name
    keep:             child modules we hold, named as in torchvision
    steps:            modules run in order (dotted names), up to the deepest tap
    taps:             steps whose outputs are the four stages (strides 4, 8, 16, 32)
    channels:         channels of the four stages
    nhwc:             stage outputs are B x H x W x C (Swin) and are returned as NCHW views
    release_children: the release's ``backbone.<i>`` numbering: torchvision child names in order
                      (``Sequential(*children()[:-1])``), or None when the release keeps ``.features``
    """

    builder: str
    keep: tuple[str, ...]
    steps: tuple[str, ...]
    taps: tuple[str, ...]
    channels: tuple[int, int, int, int]
    nhwc: bool = False
    release_children: tuple[str, ...] | None = None


def _features(n: int) -> tuple[str, ...]:
    return tuple(f"features.{i}" for i in range(n))


_SWIN_CHILDREN = ("features", "norm", "permute", "avgpool", "flatten")
_CONVNEXT_CHILDREN = ("features", "avgpool")
_RESNET_STEPS = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")


def _swin(builder: str, channels: tuple[int, int, int, int]) -> TorchvisionSpec:
    return TorchvisionSpec(builder, ("features", "norm"), _features(8), _features(8)[1::2], channels,
                           nhwc=True, release_children=_SWIN_CHILDREN)


def _convnext(builder: str, channels: tuple[int, int, int, int]) -> TorchvisionSpec:
    return TorchvisionSpec(builder, ("features",), _features(8), _features(8)[1::2], channels,
                           release_children=_CONVNEXT_CHILDREN)


TORCHVISION_BACKBONES: dict[str, TorchvisionSpec] = {
    "swin_base": _swin("swin_b", (128, 256, 512, 1024)),
    "swinv2_base": _swin("swin_v2_b", (128, 256, 512, 1024)),
    "swinv2_small": _swin("swin_v2_s", (96, 192, 384, 768)),
    "swinv2_tiny": _swin("swin_v2_t", (96, 192, 384, 768)),
    "convnext_base": _convnext("convnext_base", (128, 256, 512, 1024)),
    "convnext_small": _convnext("convnext_small", (96, 192, 384, 768)),
    "convnext_tiny": _convnext("convnext_tiny", (96, 192, 384, 768)),
    "resnet101": TorchvisionSpec("resnet101", _RESNET_STEPS, _RESNET_STEPS, _RESNET_STEPS[4:],
                                 (256, 512, 1024, 2048), release_children=_RESNET_STEPS + ("avgpool",)),
    "mobilenet": TorchvisionSpec("mobilenet_v3_large", ("features",), _features(17),
                                 ("features.3", "features.6", "features.12", "features.16"), (24, 40, 112, 960)),
    "efficientnet": TorchvisionSpec("efficientnet_v2_m", ("features",), _features(9),
                                    ("features.2", "features.3", "features.5", "features.8"), (48, 80, 176, 1280)),
}

TIMM_PREFIX = "timm/"


def list_backbones() -> list[str]:
    """Torchvision backbone names (any ``timm/<name>`` works as well)."""
    return list(TORCHVISION_BACKBONES)


class TorchvisionBackbone(nn.Module):
    """A torchvision model cut to its four stages (see :class:`TorchvisionSpec`)."""

    def __init__(self, spec: TorchvisionSpec, model: nn.Module):
        super().__init__()
        for name in spec.keep:
            self.add_module(name, getattr(model, name))
        self.spec = spec
        self.channels = spec.channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = set(self.spec.taps)
        stages = []
        for name in self.spec.steps:
            x = self.get_submodule(name)(x)
            if name in taps:
                # Swin stages are B x H x W x C; a permuted view is NCHW in channels-last memory.
                stages.append(x.permute(0, 3, 1, 2) if self.spec.nhwc else x)
                if len(stages) == len(taps):
                    break
        return stages


class TimmBackbone(nn.Module):
    """A timm ``features_only`` model keeping the deepest feature at strides 4, 8, 16 and 32."""

    def __init__(self, name: str, model: nn.Module):
        super().__init__()
        reductions = list(model.feature_info.reduction())
        channels = list(model.feature_info.channels())
        picks = []
        for stride in (4, 8, 16, 32):
            at = [i for i, r in enumerate(reductions) if r == stride]
            if not at:
                raise ValueError(
                    f"timm model {name!r} has no feature map at stride {stride} (its features_only "
                    f"strides are {reductions}); SegFace needs strides 4, 8, 16 and 32"
                )
            picks.append(at[-1])
        self.model = model
        self.picks = tuple(picks)
        self.channels = tuple(channels[i] for i in picks)
        self.nhwc = str(getattr(model, "output_fmt", "NCHW")).endswith("NHWC")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.model(x)
        stages = [features[i] for i in self.picks]
        return [f.permute(0, 3, 1, 2) for f in stages] if self.nhwc else stages


def build_backbone(name: str, pretrained: bool | str = False) -> nn.Module:
    """Build backbone ``name``; ``forward(images)`` returns 4 NCHW maps, ``.channels`` their widths.

    ``pretrained``: False (random init), True (the default ImageNet weights), a torchvision weight
    name such as ``"IMAGENET1K_V1"``, or the path of a local weight file. Weights missing from the
    torch hub / Hugging Face cache are downloaded into it once, as torchvision and timm do, unless
    an offline switch is set (see :mod:`lt_faceparse.pretrained`); offline, a missing file raises a
    ``FileNotFoundError`` that says where to put it.
    """
    if name.startswith(TIMM_PREFIX):
        return _build_timm(name[len(TIMM_PREFIX):], pretrained)
    try:
        spec = TORCHVISION_BACKBONES[name]
    except KeyError:
        raise KeyError(f"unknown backbone {name!r}; known: {list_backbones()} or 'timm/<name>'") from None
    import torchvision.models as tvm  # lazy: torchvision models only for torchvision backbones

    model = tvm.get_model(spec.builder, weights=None)
    if pretrained:
        with pretrained_file_errors(pretrained, f"backbone {name!r}"):
            model.load_state_dict(torchvision_state(spec.builder, pretrained))
    return TorchvisionBackbone(spec, model)


def _build_timm(name: str, pretrained: bool | str) -> TimmBackbone:
    import timm  # lazy: timm (~1 s) only for timm backbones and weights

    kwargs: dict = {}
    if pretrained:
        file = timm_pretrained_file(name, pretrained)
        kwargs = {"pretrained": True, "pretrained_cfg_overlay": {"file": str(file)}}
    with pretrained_file_errors(pretrained, f"backbone 'timm/{name}'"):
        model = timm.create_model(name, features_only=True, **kwargs)
    return TimmBackbone(f"{TIMM_PREFIX}{name}", model)


def release_backbone_prefix(name: str) -> dict[str, str]:
    """The release's ``backbone.<i>`` prefixes -> our ``backbone.<name>`` prefixes for backbone ``name``."""
    spec = TORCHVISION_BACKBONES[name]
    if spec.release_children is None:
        return {f"{i}.": f"features.{i}." for i in range(len(spec.steps))}
    return {f"{i}.": f"{child}." for i, child in enumerate(spec.release_children)}

