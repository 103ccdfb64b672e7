"""Parameter counts equal the paper's Table 2a (11-class models) and grow by 8 x 256 for 19 classes."""

import pytest
import torch

from segface.model import SegFace


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# (backbone, fusion, paper Table 2a in millions as printed, exact count when the paper gives it)
TABLE_2A = [
    ("swin_base", True, 91.006, 91_005_752),
    ("swinv2_base", True, 91.168, None),
    ("resnet101", True, 47.254, None),
    ("efficientnet", True, 57.035, None),
    ("mobilenet", True, 7.034, None),
    ("swin_base", False, 90.513, None),
]


@pytest.mark.parametrize("backbone,fusion,millions,exact", TABLE_2A)
def test_table_2a_counts(backbone, fusion, millions, exact):
    with torch.device("meta"):  # shapes only: no initialisation cost
        eleven = SegFace(backbone, num_classes=11, fusion=fusion)
        nineteen = SegFace(backbone, num_classes=19, fusion=fusion)
    n = count(eleven)
    assert round(n / 1e6, 3) == millions
    if exact is not None:
        assert n == exact
    assert count(nineteen) - n == 8 * 256


def test_swin_base_count_decomposes():
    # Swin-B without its ImageNet head (final norm kept, as in the release), fusion, decoder.
    with torch.device("meta"):
        model = SegFace("swin_base", num_classes=11)
    assert count(model.backbone) == 86_743_224
    assert count(model.backbone.norm) == 2 * 1024
    # four Linear(C_i, 256) + Conv2d(1024, 256, 1, bias=False)
    assert count(model.fusion) == (128 + 256 + 512 + 1024) * 256 + 4 * 256 + 1024 * 256
    dec = model.face_decoder
    attn_full = 4 * (256 * 256 + 256)
    attn_half = 3 * (256 * 128 + 128) + 128 * 256 + 256
    block = attn_full + 2 * attn_half + (256 * 2048 + 2048 + 2048 * 256 + 256) + 4 * 512
    assert count(dec.transformer) == 2 * block + attn_half + 512
    assert count(dec.class_tokens) == 11 * 256
    assert count(dec.output_upscaling) == (256 * 64 * 4 + 64) + 128 + (64 * 32 * 4 + 32)
    assert count(dec.output_hypernetwork_mlps) == 2 * (256 * 256 + 256) + 256 * 32 + 32
    # the positional-encoding matrix is a buffer, not a parameter
    assert "pe_layer.positional_encoding_gaussian_matrix" in model.state_dict()
    assert count(model.pe_layer) == 0
