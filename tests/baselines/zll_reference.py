"""face-parsing.PyTorch's BiSeNet state-dict layout, written out from its published module list.

Built independently of ``baselines.bisenet`` (names and shapes only), so that a test loading it
into our model checks the layout rather than our model against itself.
"""

from __future__ import annotations

import torch

Shape = tuple[int, ...]


def _bn(prefix: str, c: int) -> dict[str, Shape]:
    return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,),
            f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}


def _conv_bn_relu(prefix: str, cin: int, cout: int, k: int) -> dict[str, Shape]:
    return {f"{prefix}.conv.weight": (cout, cin, k, k), **_bn(f"{prefix}.bn", cout)}


def _resnet18(prefix: str) -> dict[str, Shape]:
    shapes = {f"{prefix}.conv1.weight": (64, 3, 7, 7), **_bn(f"{prefix}.bn1", 64)}
    for name, cin, cout, stride in (("layer1", 64, 64, 1), ("layer2", 64, 128, 2),
                                    ("layer3", 128, 256, 2), ("layer4", 256, 512, 2)):
        for block in (0, 1):
            p = f"{prefix}.{name}.{block}"
            bin_ = cin if block == 0 else cout
            shapes[f"{p}.conv1.weight"] = (cout, bin_, 3, 3)
            shapes.update(_bn(f"{p}.bn1", cout))
            shapes[f"{p}.conv2.weight"] = (cout, cout, 3, 3)
            shapes.update(_bn(f"{p}.bn2", cout))
            if block == 0 and (stride != 1 or cin != cout):
                shapes[f"{p}.downsample.0.weight"] = (cout, cin, 1, 1)
                shapes.update(_bn(f"{p}.downsample.1", cout))
    return shapes


def zll_shapes(n: int = 19) -> dict[str, Shape]:
    """Every key of face-parsing.PyTorch's ``BiSeNet(n_classes=n).state_dict()`` with its shape."""
    shapes = _resnet18("cp.resnet")
    for name, cin in (("cp.arm16", 256), ("cp.arm32", 512)):
        shapes.update(_conv_bn_relu(f"{name}.conv", cin, 128, 3))
        shapes[f"{name}.conv_atten.weight"] = (128, 128, 1, 1)
        shapes.update(_bn(f"{name}.bn_atten", 128))
    shapes.update(_conv_bn_relu("cp.conv_head32", 128, 128, 3))
    shapes.update(_conv_bn_relu("cp.conv_head16", 128, 128, 3))
    shapes.update(_conv_bn_relu("cp.conv_avg", 512, 128, 1))
    shapes.update(_conv_bn_relu("ffm.convblk", 256, 256, 1))
    shapes["ffm.conv1.weight"] = (64, 256, 1, 1)
    shapes["ffm.conv2.weight"] = (256, 64, 1, 1)
    for name, cin, mid in (("conv_out", 256, 256), ("conv_out16", 128, 64), ("conv_out32", 128, 64)):
        shapes.update(_conv_bn_relu(f"{name}.conv", cin, mid, 3))
        shapes[f"{name}.conv_out.weight"] = (n, mid, 1, 1)
    return shapes


def is_parameter(key: str) -> bool:
    """Weights and biases are parameters; BatchNorm running statistics and counters are buffers."""
    return key.endswith((".weight", ".bias"))


def random_zll_state_dict(n: int = 19, seed: int = 0) -> dict[str, torch.Tensor]:
    """A plausible random checkpoint: small weights, positive running variances."""
    g = torch.Generator().manual_seed(seed)
    shapes = zll_shapes(n)
    state = {}
    for key, shape in shapes.items():
        is_bn = key.rsplit(".", 1)[0] + ".running_var" in shapes
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(80000)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape, generator=g)
        elif key.endswith(("running_mean", "bias")):
            state[key] = 0.1 * torch.randn(shape, generator=g)
        elif is_bn:  # BatchNorm scale
            state[key] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:  # convolution, fan-in scaled
            fan_in = shape[1] * shape[2] * shape[3]
            state[key] = torch.randn(shape, generator=g) / fan_in**0.5
    return state
