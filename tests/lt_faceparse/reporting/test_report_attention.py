import numpy as np
import pytest
import torch
import torch.nn as nn

from lt_faceparse.reporting.attention import (
    TokenMaps,
    attention_peak_in_class,
    default_classes,
    supports_token_maps,
    token_attention_figure,
    token_maps,
    token_mask_figure,
    upsample_map,
)
from lt_faceparse.reporting.figures import save_figure
from lt_faceparse.taxonomy import get_taxonomy

TAX = get_taxonomy("celebamask-hq")
K = TAX.num_classes


class FakeTokenModel(nn.Module):
    """Token i's mask logit is +5 on row band i of the image, -5 elsewhere; its attention (two
    layers, two heads) is a one-hot on face token i of the 8 x 8 stride-4 grid."""

    def forward(self, images, return_extras=False):
        b, _, h, w = images.shape
        logits = torch.full((b, K, h, w), -5.0)
        for i in range(K):
            logits[:, i, i % h] = 5.0
        if not return_extras:
            return logits
        attn = torch.zeros(b, 2, K, (h // 4) * (w // 4))
        attn[:, :, torch.arange(K), torch.arange(K)] = 1.0
        return logits, {"token_masks": logits, "attn": [attn, attn.clone()]}


def test_token_maps_shapes_and_values():
    model = FakeTokenModel()
    assert supports_token_maps(model)
    assert not supports_token_maps(nn.Conv2d(3, 3, 1))
    maps = token_maps(model, torch.zeros(3, 32, 32))
    assert maps.masks.shape == (K, 32, 32)
    assert maps.attention.shape == (2, K, 8, 8)
    assert maps.masks[3, 3].min() == pytest.approx(torch.sigmoid(torch.tensor(5.0)).item())
    assert maps.attention[0, 5].sum() == pytest.approx(1.0)
    assert maps.attention[0, 5, 0, 5] == 1.0  # face token 5 = row 0, column 5


def test_token_maps_rejects_models_without_extras():
    class NoAttn(FakeTokenModel):
        def forward(self, images, return_extras=False):
            logits, extras = super().forward(images, True)
            return logits, {"token_masks": logits}

    with pytest.raises(ValueError, match="attn"):
        token_maps(NoAttn(), torch.zeros(3, 32, 32))


def test_attention_share_on_class_by_hand():
    attention = np.zeros((1, K, 4, 4), dtype=np.float32)
    attention[0, 2] = 1.0 / 16  # uniform over the grid
    maps = TokenMaps(masks=np.zeros((K, 16, 16)), attention=attention, prediction=np.zeros((16, 16), np.uint8))
    label = np.zeros((16, 16), dtype=np.uint8)
    label[:, :4] = 2  # a quarter of the image is class 2
    assert attention_peak_in_class(maps, label, 2) == pytest.approx(0.25, abs=1e-6)
    assert np.isnan(attention_peak_in_class(maps, label, 3))  # token 3 attends nowhere
    up = upsample_map(attention[0, 2], (16, 16))
    assert up.max() == pytest.approx(1.0)


def test_default_classes_put_present_tail_first():
    label = np.zeros((8, 8), dtype=np.uint8)
    label[0, 0], label[0, 1], label[0, 2] = TAX.id_of("neck_l"), TAX.id_of("nose"), TAX.id_of("skin")
    classes = default_classes(label, TAX)
    assert classes == [TAX.id_of("neck_l"), TAX.id_of("skin"), TAX.id_of("nose")]
    assert default_classes(None, TAX, limit=3) == TAX.display_order[:3]


def test_token_figures_write_files(tmp_path):
    maps = token_maps(FakeTokenModel(), torch.zeros(3, 32, 32))
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    classes = [2, 10, 17]
    fig = token_mask_figure(image, maps, TAX, classes)
    assert len(fig.axes) == 1 + len(classes)
    paths = save_figure(fig, tmp_path, "masks", "token masks")
    fig = token_attention_figure(image, maps, TAX, classes)
    assert len(fig.axes) == 2 * len(classes)  # two layers x three tokens
    paths2 = save_figure(fig, tmp_path, "attn", "token attention")
    for p in (*paths.values(), *paths2.values()):
        assert p.stat().st_size > 0
