"""SegFace forward: shapes, fast path == literal formulation, introspection, positional encoding, backbones."""

import math

import pytest
import torch
import torch.nn.functional as F
from segface_testutil import literal_formulation

from segface.attention import Attention
from segface.backbones import build_backbone
from segface.fusion import MLPFusion
from segface.model import SegFace
from segface.position import RandomFourierEncoding


@pytest.fixture(scope="module")
def mobile():
    torch.manual_seed(0)
    return SegFace("mobilenet", num_classes=5).eval()


def test_forward_shapes_and_extras(mobile):
    x = torch.randn(2, 3, 64, 96)
    with torch.inference_mode():
        logits = mobile(x)
        again, extras = mobile(x, return_extras=True)
    assert logits.shape == (2, 5, 64, 96)
    assert torch.allclose(logits, again, atol=1e-6)  # explicit attention == fused kernel
    assert extras["token_masks"].shape == (2, 5, 64, 96)
    # two two-way layers + the final token-to-face attention, over the (64/4) x (96/4) face tokens
    assert [tuple(a.shape) for a in extras["attn"]] == [(2, 8, 5, 16 * 24)] * 3
    for a in extras["attn"]:
        assert torch.allclose(a.sum(-1), torch.ones(2, 8, 5), atol=1e-5)


def test_fast_path_equals_literal_formulation(mobile):
    x = torch.randn(2, 3, 96, 64)
    with torch.inference_mode():
        fast = mobile(x)
        with literal_formulation(mobile):
            literal = mobile(x)
    assert (fast - literal).abs().max() < 1e-5


def test_fast_path_gradients_equal_literal_gradients(mobile):
    x = torch.randn(1, 3, 64, 64)
    target = torch.randint(0, 5, (1, 64, 64))
    grads = []
    for literal in (False, True):
        mobile.zero_grad()
        mobile.literal = literal
        try:
            mobile.loss(mobile(x), target).backward()
        finally:
            mobile.literal = False
        grads.append({n: p.grad.clone() for n, p in mobile.named_parameters() if not n.startswith("backbone.")})
    for name, g in grads[0].items():
        assert torch.allclose(g, grads[1][name], atol=1e-5, rtol=1e-4), name


def test_fusion_fast_path_matches_hand_written_concat():
    torch.manual_seed(1)
    channels = (8, 16, 24, 40)
    fusion = MLPFusion(channels, dim=12)
    stages = [torch.randn(2, c, 32 // 2**i, 24 // 2**i) for i, c in enumerate(channels)]
    # the paper's formulation written out: Linear per stage, upsample, concat stride 32 -> 4, 1x1 conv
    projected = [
        F.interpolate(F.linear(s.permute(0, 2, 3, 1), lin.proj.weight, lin.proj.bias).permute(0, 3, 1, 2),
                      size=(32, 24), mode="bilinear", align_corners=False)
        for s, lin in zip(stages, fusion.linear_c)
    ]
    literal = F.conv2d(torch.cat(projected[::-1], dim=1), fusion.linear_fuse.weight)
    assert torch.allclose(fusion.forward_concat(stages), literal, atol=1e-6)
    assert torch.allclose(fusion(stages), literal, atol=1e-5)  # training mode: folded with autograd
    with torch.no_grad():
        assert torch.allclose(fusion(stages), literal, atol=1e-5)  # cached fold
        fusion.linear_c[3].proj.weight.mul_(2)  # in-place change invalidates the cached fold
        assert not torch.allclose(fusion(stages), literal, atol=1e-3)
    # gradients flow to every fusion parameter through the fast path
    fusion(stages).square().sum().backward()
    assert all(p.grad.abs().sum() > 0 for p in fusion.parameters())


def test_positional_encoding_formula_and_cache():
    torch.manual_seed(2)
    pe = RandomFourierEncoding(dim=8)
    g = pe.positional_encoding_gaussian_matrix
    h, w = 3, 5
    out = pe(h, w)
    assert out.shape == (8, h, w)
    y, x = 1, 4  # pixel centre (4.5 / 5, 1.5 / 3) -> [-1, 1]
    c = torch.tensor([2 * (x + 0.5) / w - 1, 2 * (y + 0.5) / h - 1])
    proj = 2 * math.pi * (c @ g)
    assert torch.allclose(out[:, y, x], torch.cat([proj.sin(), proj.cos()]), atol=1e-6)
    assert pe(h, w) is out  # cached
    new = torch.randn_like(g)
    pe.load_state_dict({"positional_encoding_gaussian_matrix": new})
    assert torch.allclose(pe(h, w), pe.encode(h, w)) and not torch.allclose(pe(h, w), out)


def test_attention_matches_written_out_formula():
    torch.manual_seed(3)
    attn = Attention(16, num_heads=2, downsample_rate=2)
    q, k, v = torch.randn(2, 3, 16), torch.randn(2, 7, 16), torch.randn(2, 7, 16)
    out, weights = attn(q, k, v, return_attn=True)
    heads = []
    for h in range(2):
        sl = slice(4 * h, 4 * h + 4)
        qh = (q @ attn.q_proj.weight.T + attn.q_proj.bias)[..., sl]
        kh = (k @ attn.k_proj.weight.T + attn.k_proj.bias)[..., sl]
        vh = (v @ attn.v_proj.weight.T + attn.v_proj.bias)[..., sl]
        a = torch.softmax(qh @ kh.transpose(1, 2) / 2.0, dim=-1)  # sqrt(4) = 2
        assert torch.allclose(weights[:, h], a, atol=1e-6)
        heads.append(a @ vh)
    expected = torch.cat(heads, -1) @ attn.out_proj.weight.T + attn.out_proj.bias
    assert torch.allclose(out, expected, atol=1e-5)
    assert torch.allclose(attn(q, k, v), expected, atol=1e-5)


def test_training_step_and_loss(mobile):
    model = SegFace("mobilenet", num_classes=3, fusion=False)
    x = torch.randn(2, 3, 64, 64)
    target = torch.randint(0, 3, (2, 64, 64))
    target[0, :8] = 255
    loss = model.loss(model(x), target)
    loss.backward()
    assert torch.isfinite(loss)
    assert model.face_decoder.class_tokens.weight.grad.abs().sum() > 0
    assert model.build_kwargs["fusion"] is False and model.build_kwargs["num_classes"] == 3


def test_rejects_sizes_not_divisible_by_32(mobile):
    with pytest.raises(ValueError, match="divisible by 32"):
        mobile(torch.randn(1, 3, 64, 80))


def test_swin_backbone_skips_final_norm_and_gives_strides():
    with torch.device("meta"):
        backbone = build_backbone("swin_base")
        outs = backbone(torch.empty(1, 3, 64, 96))
    assert [tuple(o.shape) for o in outs] == [(1, 128, 16, 24), (1, 256, 8, 12), (1, 512, 4, 6), (1, 1024, 2, 3)]
    calls = []
    backbone.norm.register_forward_hook(lambda *a: calls.append(1))
    with torch.device("meta"):
        backbone(torch.empty(1, 3, 64, 64))
    assert calls == []  # held for the release's weights and the paper's count, never run


@pytest.mark.parametrize("name,channels", [("resnet101", (256, 512, 1024, 2048)),
                                           ("convnext_tiny", (96, 192, 384, 768)),
                                           ("efficientnet", (48, 80, 176, 1280))])
def test_backbone_stage_shapes(name, channels):
    with torch.device("meta"):
        backbone = build_backbone(name)
        outs = backbone(torch.empty(1, 3, 64, 64))
    assert backbone.channels == channels
    assert [tuple(o.shape) for o in outs] == [(1, c, 64 // s, 64 // s) for c, s in zip(channels, (4, 8, 16, 32))]


def test_convnext_tiny_is_tiny():
    with torch.device("meta"):
        tiny, small = build_backbone("convnext_tiny"), build_backbone("convnext_small")
    assert len(tiny.features[5]) == 9 and len(small.features[5]) == 27


def test_timm_backbone_picks_strides_4_to_32():
    backbone = build_backbone("timm/resnet10t")
    outs = backbone(torch.randn(1, 3, 64, 64))
    assert [o.shape[-1] for o in outs] == [16, 8, 4, 2]
    assert [o.shape[1] for o in outs] == list(backbone.channels)
    with pytest.raises(ValueError, match="stride 4"):
        build_backbone("timm/vit_tiny_patch16_224")


def test_missing_pretrained_weights_fail_fast_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # get_dir() follows TORCH_HOME
    with pytest.raises(FileNotFoundError, match="mobilenet_v3_large.*nothing is downloaded in offline mode"):
        build_backbone("mobilenet", pretrained=True)


def test_pretrained_from_local_file(tmp_path):
    import torchvision

    torch.manual_seed(4)
    reference = torchvision.models.mobilenet_v3_large()
    path = tmp_path / "mnv3.pth"
    torch.save(reference.state_dict(), path)
    backbone = build_backbone("mobilenet", pretrained=str(path))
    assert torch.equal(backbone.features[16][0].weight, reference.features[16][0].weight)


def test_stacked_face_projections_equal_the_separate_linears():
    from segface.cache import DerivedCache
    from segface.transformer import project_faces

    torch.manual_seed(4)
    a, b, c = torch.nn.Linear(16, 8), torch.nn.Linear(16, 4), torch.nn.Linear(16, 8)
    faces, pe = torch.randn(2, 30, 16), torch.randn(1, 30, 16)
    expected = [a(faces + pe), b(faces + pe), c(faces)]
    cache = DerivedCache()
    with torch.inference_mode():
        cached = project_faces(faces, pe, [a, b], [c], cache)  # one product + the cached PE share
        again = project_faces(faces, pe, [a, b], [c], cache)
    direct = project_faces(faces, pe, [a, b], [c], cache)  # with gradients: as written
    for want, got, got2, got3 in zip(expected, cached, again, direct):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got2, want, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got3, want, rtol=1e-5, atol=1e-5)
    assert direct[0].requires_grad
    with torch.no_grad():
        a.weight.mul_(2)  # new weights: the cached PE share must follow
    with torch.inference_mode():
        torch.testing.assert_close(project_faces(faces, pe, [a, b], [c], cache)[0], a(faces + pe),
                                   rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("chunk_pixels", [1, 24, 10_000])  # one row per band, ragged bands, one band
def test_banded_subpixel_head_equals_transposed_convolutions(monkeypatch, chunk_pixels):
    import segface.decoder as decoder

    torch.manual_seed(5)
    head = decoder.SegFaceDecoder(num_classes=3, dim=32)
    h, w = 7, 8  # 24 pixels per band -> bands of 3, 3, 1 face rows
    faces = torch.randn(2, 32, h, w)
    weights = torch.randn(2, 3, 4)
    monkeypatch.setattr(decoder, "HEAD_CHUNK_PIXELS", chunk_pixels)
    with torch.no_grad():
        expected = torch.einsum("bkc,bchw->bkhw", weights, head.output_upscaling(faces))
        got = decoder.subpixel_head(faces.flatten(2).transpose(1, 2), (h, w), head.output_upscaling, weights)
    assert got.shape == (2, 3, 4 * h, 4 * w)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
