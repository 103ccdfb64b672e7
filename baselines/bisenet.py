"""BiSeNet with a ResNet-18 context path, laid out as in face-parsing.PyTorch.

Module names and shapes match the state dict of that project's ``79999_iter.pth`` so it loads
strictly (see :func:`baselines.convert_zll.convert_zll`). As there, there is no spatial path: the
stride-8 ResNet feature stands in for it and is fused with the upsampled context features.

Parameters (19 classes) = 13,300,416:

- ResNet-18 trunk without ``fc``: 11,176,512 (torchvision's 11,689,512 minus 512 x 1000 + 1000).
- context path heads 1,279,744: ``arm16`` 311,808 (3x3 256->128 conv + BN, 1x1 128->128 + BN),
  ``arm32`` 606,720 (3x3 512->128 ...), ``conv_head32``/``conv_head16`` 147,712 each (3x3 128->128 +
  BN), ``conv_avg`` 65,792 (1x1 512->128 + BN).
- ``ffm`` 98,816: 1x1 256->256 + BN, then the 256->64->256 channel attention (no bias).
- ``conv_out`` 590,336 + 256 x K; ``conv_out16``/``conv_out32`` 73,856 + 64 x K each.

i.e. 13,293,120 + 384 x K parameters for K classes.

As in the reference, the global-context ``conv_avg`` normalises a 1 x 1 map, so training mode needs
a batch of two or more images.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from baselines.numbering import OutputNumbering
from baselines.ohem import OhemCrossEntropy
from baselines.resnet import ResNet18
from lt_faceparse.taxonomy import IGNORE_INDEX


def bisenet_num_parameters(num_classes: int) -> int:
    """Closed-form parameter count of :class:`BiSeNet` (derivation in the module docstring)."""
    return 13_293_120 + 384 * num_classes


class ConvBNReLU(nn.Module):
    """Convolution (no bias) -> BatchNorm -> ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, 1, kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


class AttentionRefinement(nn.Module):
    """3x3 ConvBNReLU, then reweight its channels by a sigmoid of their global average."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_channels, out_channels, 3)
        self.conv_atten = nn.Conv2d(out_channels, out_channels, 1, bias=False)
        self.bn_atten = nn.BatchNorm2d(out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.conv(x)
        atten = torch.sigmoid(self.bn_atten(self.conv_atten(feat.mean((2, 3), keepdim=True))))
        return feat * atten


class ContextPath(nn.Module):
    """ResNet-18 + attention refinement of the stride 16/32 features + a global-context term.

    Returns the stride-8 ResNet feature (128 ch) and the refined context at strides 8 and 16
    (128 ch each). Internal upsampling is nearest-neighbour, as in the reference.
    """

    def __init__(self) -> None:
        super().__init__()
        self.resnet = ResNet18()
        self.arm16 = AttentionRefinement(256, 128)
        self.arm32 = AttentionRefinement(512, 128)
        self.conv_head32 = ConvBNReLU(128, 128, 3)
        self.conv_head16 = ConvBNReLU(128, 128, 3)
        self.conv_avg = ConvBNReLU(512, 128, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feat8, feat16, feat32 = self.resnet(x)
        context = self.conv_avg(feat32.mean((2, 3), keepdim=True))  # B x 128 x 1 x 1

        feat32_sum = self.arm32(feat32) + context  # broadcast = nearest upsampling of a 1x1 map
        feat32_up = self.conv_head32(F.interpolate(feat32_sum, size=feat16.shape[2:], mode="nearest"))

        feat16_sum = self.arm16(feat16) + feat32_up
        feat16_up = self.conv_head16(F.interpolate(feat16_sum, size=feat8.shape[2:], mode="nearest"))
        return feat8, feat16_up, feat32_up  # strides 8, 8, 16


class FeatureFusion(nn.Module):
    """Concatenate two feature maps, 1x1 ConvBNReLU, then add a squeeze-excitation reweighting."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.convblk = ConvBNReLU(in_channels, out_channels, 1)
        self.conv1 = nn.Conv2d(out_channels, out_channels // 4, 1, bias=False)
        self.conv2 = nn.Conv2d(out_channels // 4, out_channels, 1, bias=False)

    def forward(self, spatial: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        feat = self.convblk(torch.cat([spatial, context], dim=1))
        atten = torch.sigmoid(self.conv2(F.relu(self.conv1(feat.mean((2, 3), keepdim=True)))))
        return feat + feat * atten


class BiSeNetOutput(nn.Module):
    """3x3 ConvBNReLU then a 1x1 classifier without bias."""

    def __init__(self, in_channels: int, mid_channels: int, num_classes: int) -> None:
        super().__init__()
        self.conv = ConvBNReLU(in_channels, mid_channels, 3)
        self.conv_out = nn.Conv2d(mid_channels, num_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.conv(x))


class BiSeNet(nn.Module):
    """BiSeNet (ResNet-18 context path), face-parsing.PyTorch layout.

    Args:
        num_classes: output classes K.
        numbering: ``None`` when the classifier's channels are already in ``taxonomy``'s ids; a
            numbering name of that taxonomy (e.g. ``"zll"`` for ``79999_iter.pth``) to reorder the
            logits into ``taxonomy``'s ids after the classifier.
        taxonomy: taxonomy the output ids refer to (used with ``numbering``).
        loss: ``"ohem"`` (as the reference was trained: OHEM cross-entropy, probability threshold
            0.7, at least batch pixels / 16 kept) or ``"ce"`` (plain pixel-mean cross-entropy).
        aux_weight: weight of the two auxiliary heads' losses when :meth:`loss` gets ``extras``
            (the reference sums all three heads with weight 1). A loop that calls ``model(images)``
            and ``loss(logits, target)`` trains the main head only; the auxiliary heads then get no
            gradient (DistributedDataParallel needs ``find_unused_parameters=True`` in that case).
        pretrained: initialise the ResNet-18 from torchvision's ImageNet weights (True; downloaded into
            the torch hub cache once, see :mod:`lt_faceparse.pretrained`), or from a weight name or file.
    """

    def __init__(
        self,
        num_classes: int = 19,
        numbering: str | None = None,
        taxonomy: str = "celebamask-hq",
        loss: str = "ohem",
        aux_weight: float = 1.0,
        pretrained: bool | str = False,
    ) -> None:
        super().__init__()
        if loss not in ("ohem", "ce"):
            raise ValueError(f"BiSeNet loss must be 'ohem' or 'ce', got {loss!r}")
        self.build_kwargs: dict[str, Any] = {
            "num_classes": num_classes, "numbering": numbering, "taxonomy": taxonomy,
            "loss": loss, "aux_weight": aux_weight, "pretrained": pretrained,
        }
        self.num_classes = num_classes
        self.cp = ContextPath()
        self.ffm = FeatureFusion(256, 256)
        self.conv_out = BiSeNetOutput(256, 256, num_classes)
        self.conv_out16 = BiSeNetOutput(128, 64, num_classes)
        self.conv_out32 = BiSeNetOutput(128, 64, num_classes)
        self.renumber: nn.Module = nn.Identity()
        if numbering is not None:
            self.renumber = OutputNumbering(taxonomy, numbering)
            if len(self.renumber.order) != num_classes:
                raise ValueError(
                    f"numbering {numbering!r} of {taxonomy!r} has {len(self.renumber.order)} classes, "
                    f"the model {num_classes}"
                )
        self.criterion = OhemCrossEntropy() if loss == "ohem" else nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
        self.aux_weight = aux_weight
        if pretrained:
            self.cp.resnet.load_imagenet(pretrained)

    def _to_input(self, logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        # The reference upsamples its outputs bilinearly with align_corners=True.
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=True)
        return self.renumber(logits)

    def forward(
        self, images: torch.Tensor, return_extras: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, Any]]:
        """B x 3 x H x W (ImageNet-normalised RGB) -> B x K x H x W logits in our ids.

        With ``return_extras=True`` also returns ``{"aux_logits": [stride-8 context head, stride-16
        context head]}``, both B x K x H x W, for the auxiliary losses.
        """
        size = images.shape[2:]
        feat8, context8, context16 = self.cp(images)
        logits = self._to_input(self.conv_out(self.ffm(feat8, context8)), size)
        if not return_extras:
            return logits
        aux = [self._to_input(self.conv_out16(context8), size), self._to_input(self.conv_out32(context16), size)]
        return logits, {"aux_logits": aux}

    def loss(self, logits: torch.Tensor, target: torch.Tensor, extras: dict[str, Any] | None = None) -> torch.Tensor:
        """Main-head loss, plus ``aux_weight`` x each auxiliary head's loss when ``extras`` holds them."""
        total = self.criterion(logits, target)
        for aux in (extras or {}).get("aux_logits", []):
            total = total + self.aux_weight * self.criterion(aux, target)
        return total
