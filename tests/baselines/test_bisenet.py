import math

import pytest
import torch

from baselines.bisenet import BiSeNet, bisenet_num_parameters
from lt_faceparse.models import build_model
from lt_faceparse.speed.harness import count_parameters
from zll_reference import is_parameter, random_zll_state_dict, zll_shapes

torch.set_num_threads(1)


def test_reference_layout_loads_strictly():
    model = BiSeNet(num_classes=19)
    missing, unexpected = model.load_state_dict(random_zll_state_dict(19), strict=True)
    assert missing == [] and unexpected == []


def test_parameter_count_matches_reference_layout_and_closed_form():
    shapes = zll_shapes(19)
    reference = sum(math.prod(s) for k, s in shapes.items() if is_parameter(k))
    # ResNet-18 without fc: 11,689,512 - (512 * 1000 + 1000); heads as derived in baselines/bisenet.py
    assert 11_689_512 - 513_000 == sum(math.prod(s) for k, s in shapes.items()
                                       if is_parameter(k) and k.startswith("cp.resnet."))
    assert reference == 13_300_416
    assert count_parameters(BiSeNet(num_classes=19)) == reference == bisenet_num_parameters(19)
    assert count_parameters(BiSeNet(num_classes=11)) == bisenet_num_parameters(11) == 13_300_416 - 8 * 384


def test_forward_shapes_and_aux_heads():
    model = build_model("bisenet", num_classes=11).eval()
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        logits, extras = model(images, return_extras=True)
        plain = model(images)
    assert logits.shape == (2, 11, 64, 96)
    assert [a.shape for a in extras["aux_logits"]] == [(2, 11, 64, 96)] * 2
    torch.testing.assert_close(plain, logits)
    assert model.build_kwargs["num_classes"] == 11


def test_loss_adds_weighted_aux_heads():
    model = BiSeNet(num_classes=5, loss="ce", aux_weight=0.4)
    g = torch.Generator().manual_seed(0)
    logits, aux1, aux2 = (torch.randn(2, 5, 8, 8, generator=g) for _ in range(3))
    target = torch.randint(0, 5, (2, 8, 8), generator=g)
    target[0, 0, :] = 255
    ce = torch.nn.functional.cross_entropy
    expected = ce(logits, target, ignore_index=255) + 0.4 * (ce(aux1, target, ignore_index=255)
                                                             + ce(aux2, target, ignore_index=255))
    torch.testing.assert_close(model.loss(logits, target, {"aux_logits": [aux1, aux2]}), expected)
    torch.testing.assert_close(model.loss(logits, target), ce(logits, target, ignore_index=255))


def test_training_step_reduces_ohem_loss():
    torch.manual_seed(0)
    model = BiSeNet(num_classes=3).train()
    images = torch.randn(2, 3, 32, 32)
    target = (images[:, 0] > 0).long() + (images[:, 1] > 1).long()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        logits, extras = model(images, return_extras=True)
        loss = model.loss(logits, target, extras)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_rejects_unknown_loss_and_mismatched_numbering():
    with pytest.raises(ValueError, match="ohem"):
        BiSeNet(loss="focal")
    with pytest.raises(ValueError, match="19 classes"):
        BiSeNet(num_classes=11, numbering="zll")


def test_flop_count_is_every_convolution_once():
    # BiSeNet is convolutions only: FLOPs = sum over convs of 2 * out pixels * C_out * C_in/groups * k*k.
    from lt_faceparse.speed.harness import count_flops

    model = BiSeNet(num_classes=19).eval()
    expected = []

    def hook(conv, _inputs, out):
        k = conv.kernel_size[0] * conv.kernel_size[1]
        expected.append(2 * out.numel() * conv.in_channels // conv.groups * k)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
    for h in handles:
        h.remove()
    # resnet 20, two ARMs 4, conv_head32/16 + conv_avg 3, ffm 3, main output head 2 (aux heads not run)
    assert len(expected) == 20 + 4 + 3 + 3 + 2
    assert count_flops(model, 64) == sum(expected)
