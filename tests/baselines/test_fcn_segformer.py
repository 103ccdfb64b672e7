import pytest
import torch
import torch.nn.functional as F

from baselines.fcn import FCN
from baselines.segformer_head import SegFormerHead
from lt_faceparse.models import build_model
from lt_faceparse.speed.harness import count_parameters

torch.set_num_threads(1)

BACKBONE = "timm/mobilenetv3_small_050"  # stage channels 8, 16, 24, 288; builds offline, ~0.3M params
K = 5


@pytest.fixture(scope="module")
def fcn():
    return build_model("fcn", backbone=BACKBONE, num_classes=K, channels=32)


@pytest.fixture(scope="module")
def segformer():
    return build_model("segformer", backbone=BACKBONE, num_classes=K, dim=32)


def test_head_parameter_counts(fcn, segformer):
    c4, c8, c16, c32 = fcn.backbone.channels
    assert (c4, c8, c16, c32) == (8, 16, 24, 288)
    ch, d = 32, 32
    fcn_head = (c32 * ch * 9 + 2 * ch) + (ch * ch * 9 + 2 * ch) + (ch + 1) * K + (c16 + 1) * K + (c8 + 1) * K
    assert count_parameters(fcn) - count_parameters(fcn.backbone) == fcn_head
    fusion = sum(c * d + d for c in (c4, c8, c16, c32)) + 4 * d * d
    assert count_parameters(segformer) - count_parameters(segformer.backbone) == fusion + 2 * d + (d + 1) * K


@pytest.mark.parametrize("name", ["fcn", "segformer"])
def test_forward_returns_logits_at_input_resolution(name, fcn, segformer):
    model = {"fcn": fcn, "segformer": segformer}[name].eval()
    assert isinstance(model, {"fcn": FCN, "segformer": SegFormerHead}[name])  # what the registry resolves to
    images = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        logits = model(images)
        same, extras = model(images, return_extras=True)
    assert logits.shape == (2, K, 64, 96)
    assert extras == {} and torch.equal(same, logits)
    assert model.build_kwargs["backbone"] == BACKBONE and model.build_kwargs["num_classes"] == K


def test_segformer_head_is_fusion_then_pointwise_classifier(segformer):
    model = segformer.eval()
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        fused = model.fusion.forward_concat(model.backbone(images))  # the literal concat formulation
        expected = F.interpolate(model.classifier(F.relu(model.norm(fused))), size=(64, 64), mode="bilinear",
                                 align_corners=False)
        torch.testing.assert_close(model(images), expected, rtol=1e-4, atol=1e-5)


def test_loss_is_segface_ce_plus_dice(fcn):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, K, 8, 8, generator=g)
    target = torch.randint(0, K, (2, 8, 8), generator=g)
    probs, onehot = logits.softmax(1), F.one_hot(target, K).permute(0, 3, 1, 2).float()
    inter, denom = (probs * onehot).sum((0, 2, 3)), (probs**2).sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    dice = (1 - (2 * inter + 1e-5) / (denom + 1e-5)).mean()
    torch.testing.assert_close(fcn.loss(logits, target), 0.5 * F.cross_entropy(logits, target) + 0.5 * dice)


@pytest.mark.parametrize("name", ["fcn", "segformer"])
def test_tiny_overfit_lowers_the_loss(name):
    torch.manual_seed(0)
    width = {"fcn": {"channels": 16}, "segformer": {"dim": 16}}[name]
    model = build_model(name, backbone=BACKBONE, num_classes=3, dropout=0.0, **width).train()
    images = torch.randn(2, 3, 64, 64)
    target = torch.zeros(2, 64, 64, dtype=torch.long)
    target[:, 16:48, 16:48] = 1
    target[:, 24:40, 24:40] = 2
    target[0, :4] = 255  # ignored rows
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        loss = model.loss(model(images), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize("name", ["fcn", "segformer"])
def test_weight_file_round_trip(name, fcn, segformer, tmp_path):
    from lt_faceparse.weights import load_model, save_model

    model = {"fcn": fcn, "segformer": segformer}[name].eval()
    path = save_model(model, tmp_path, {"model": name, "model_kwargs": model.build_kwargs,
                                        "taxonomy": "celebamask-hq", "resolution": 64})
    loaded, meta = load_model(path)
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), model(images))
    assert meta["model_kwargs"]["backbone"] == BACKBONE
