"""The tiny LayerNorm-only parser follows the model interface."""

from __future__ import annotations

import math

import torch

from lt_faceparse.engine.tiny import LayerNorm2d, TinyParser
from lt_faceparse.models import build_model


def test_registry_builds_tiny_with_the_model_interface():
    model = build_model("tiny", num_classes=11, width=4)
    assert isinstance(model, TinyParser) and model.build_kwargs == {"num_classes": 11, "width": 4}
    logits = model(torch.randn(2, 3, 20, 24))
    assert logits.shape == (2, 11, 20, 24)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def test_outputs_of_one_image_do_not_depend_on_the_rest_of_the_batch():
    model = TinyParser(num_classes=5, width=4)
    x = torch.randn(3, 3, 16, 16)
    torch.testing.assert_close(model(x)[1:2], model(x[1:2]))


def test_loss_is_pixel_mean_cross_entropy_ignoring_255():
    model = TinyParser(num_classes=3, width=4)
    logits = torch.zeros(1, 3, 1, 2)
    logits[0, 0, 0, 0] = math.log(2.0)  # p(class 0) = 2/4 at the first pixel
    target = torch.tensor([[[0, 255]]])
    assert torch.isclose(model.loss(logits, target), torch.tensor(math.log(2.0)))


def test_layernorm2d_normalises_channels_per_pixel():
    norm = LayerNorm2d(6)
    y = norm(torch.randn(2, 6, 3, 3) * 5 + 2)
    torch.testing.assert_close(y.mean(1), torch.zeros(2, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(1, unbiased=False), torch.ones(2, 3, 3), atol=1e-3, rtol=0)
