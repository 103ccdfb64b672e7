"""ResNet-18 trunk (no pooling head, no classifier) returning the stride 8, 16 and 32 features.

Parameter names follow torchvision's ``resnet18`` (``conv1``, ``bn1``, ``layer{1..4}.{0,1}.{conv1,
bn1,conv2,bn2,downsample.{0,1}}``), which is also what face-parsing.PyTorch's context path stores, so
ImageNet weights and the ``79999_iter.pth`` checkpoint both load without renaming.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from lt_faceparse.pretrained import pretrained_file_errors, torchvision_state


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (1x1 projection when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def _stage(in_channels: int, out_channels: int, stride: int, blocks: int = 2) -> nn.Sequential:
    layers = [BasicBlock(in_channels, out_channels, stride)]
    layers += [BasicBlock(out_channels, out_channels) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class ResNet18(nn.Module):
    """ResNet-18 feature trunk: B x 3 x H x W -> (B x 128 x H/8, B x 256 x H/16, B x 512 x H/32)."""

    channels = (128, 256, 512)

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _stage(64, 64, 1)
        self.layer2 = _stage(64, 128, 2)
        self.layer3 = _stage(128, 256, 2)
        self.layer4 = _stage(256, 512, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # H/4
        x = self.layer1(x)
        feat8 = self.layer2(x)  # 128 x H/8
        feat16 = self.layer3(feat8)  # 256 x H/16
        feat32 = self.layer4(feat16)  # 512 x H/32
        return feat8, feat16, feat32

    def load_imagenet(self, pretrained: bool | str = True) -> None:
        """Initialise from torchvision's ImageNet-1K ResNet-18 weights (``IMAGENET1K_V1``, or a weight
        name or local file), cached and downloaded as :mod:`lt_faceparse.pretrained` describes."""
        with pretrained_file_errors(pretrained, "BiSeNet's ResNet-18"):
            state = torchvision_state("resnet18", "IMAGENET1K_V1" if pretrained is True else pretrained)
            state = {k: v for k, v in state.items() if not k.startswith("fc.")}
            self.load_state_dict(state, strict=True)
