"""Conversion of the release's checkpoints: key mapping for every backbone, strict loading, logits round trip.

The release's module tree is rebuilt here from the facts file (names and shapes), independently of
our SegFace: ``backbone`` = ``Sequential(*children()[:-1])`` of the torchvision model (``.features``
for MobileNetV3 / EfficientNetV2), ``pe_layer``, ``linear_c.<i>.proj``, ``linear_fuse``,
``face_decoder.<name>_token`` embeddings, the Segment Anything transformer, upscaling and MLP.
"""

import collections
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

from lt_faceparse.errors import DataError
from lt_faceparse.taxonomy import CELEBAMASK_HQ
from segface.backbones import TORCHVISION_BACKBONES
from segface.checkpoint import load_checkpoint
from segface.convert import RELEASE_TOKEN_NAMES, convert_official, identify_backbone, map_release_state
from segface.model import SegFace
from segface.transformer import TwoWayTransformer

TAPS = {"mobilenet": (3, 6, 12, 16)}


class Holder(nn.Module):
    pass


def attention(m: nn.Module, q, k, v, heads: int = 8):
    """Segment Anything's attention written out: project, split heads, softmax(q k^T / sqrt(c)) v, merge, project."""
    q, k, v = F.linear(q, m.q_proj.weight, m.q_proj.bias), F.linear(k, m.k_proj.weight, m.k_proj.bias), F.linear(v, m.v_proj.weight, m.v_proj.bias)
    split = lambda x: x.reshape(x.shape[0], x.shape[1], heads, -1).transpose(1, 2)  # noqa: E731
    q, k, v = split(q), split(k), split(v)
    out = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1]), -1) @ v
    out = out.transpose(1, 2).reshape(out.shape[0], -1, heads * out.shape[-1])
    return F.linear(out, m.out_proj.weight, m.out_proj.bias)


def two_way_transformer(t: nn.Module, faces, pe, tokens):
    """The facts file's decoder: per layer token self-attention (no PE, no residual in layer 0), LN,
    token-to-face attention, LN, MLP, LN, face-to-token attention, LN; then a final token-to-face
    attention and LN. Tokens are their own query PE."""
    ln = lambda m, x: F.layer_norm(x, (256,), m.weight, m.bias)  # noqa: E731
    queries, keys, qpe = tokens, faces, tokens
    for i, layer in enumerate(t.layers):
        if i == 0:
            queries = attention(layer.self_attn, queries, queries, queries)
        else:
            queries = queries + attention(layer.self_attn, queries + qpe, queries + qpe, queries)
        queries = ln(layer.norm1, queries)
        queries = ln(layer.norm2, queries + attention(layer.cross_attn_token_to_image, queries + qpe, keys + pe, keys, heads=8))
        mlp = F.linear(F.relu(F.linear(queries, layer.mlp.lin1.weight, layer.mlp.lin1.bias)), layer.mlp.lin2.weight, layer.mlp.lin2.bias)
        queries = ln(layer.norm3, queries + mlp)
        keys = ln(layer.norm4, keys + attention(layer.cross_attn_image_to_token, keys + pe, queries + qpe, queries))
    queries = ln(t.norm_final_attn, queries + attention(t.final_attn_token_to_image, queries + qpe, keys + pe, keys))
    return queries, keys


class ReleaseLayout(nn.Module):
    """The release's SegFace module tree (key layout of ``state_dict_backbone``)."""

    def __init__(self, backbone: str, token_names: tuple[str, ...]):
        super().__init__()
        spec = TORCHVISION_BACKBONES[backbone]
        tv = torchvision.models.get_model(spec.builder)
        if spec.release_children is None:
            self.backbone = tv.features
        else:
            self.backbone = nn.Sequential(*list(tv.children())[:-1])
        self.pe_layer = Holder()
        self.pe_layer.register_buffer("positional_encoding_gaussian_matrix", torch.randn(2, 128))
        self.linear_c = nn.ModuleList()
        for c in spec.channels:
            m = Holder()
            m.proj = nn.Linear(c, 256)
            self.linear_c.append(m)
        self.linear_fuse = nn.Conv2d(1024, 256, 1, bias=False)
        dec = Holder()
        for name in token_names:
            setattr(dec, f"{name}_token", nn.Embedding(1, 256))
        dec.transformer = TwoWayTransformer(depth=2, dim=256, num_heads=8, mlp_dim=2048)
        ln = Holder()
        ln.weight = nn.Parameter(1 + 0.1 * torch.randn(64))
        ln.bias = nn.Parameter(0.1 * torch.randn(64))
        dec.output_upscaling = nn.Sequential(nn.ConvTranspose2d(256, 64, 2, 2), ln, nn.GELU(),
                                             nn.ConvTranspose2d(64, 32, 2, 2), nn.GELU())
        dec.output_hypernetwork_mlps = Holder()
        dec.output_hypernetwork_mlps.layers = nn.ModuleList([nn.Linear(256, 256), nn.Linear(256, 256), nn.Linear(256, 32)])
        self.face_decoder = dec
        self.token_names = token_names

    def literal_forward(self, x: torch.Tensor) -> torch.Tensor:
        """SegFace as the facts file describes it (mobilenet backbone: whole features run, stages tapped)."""
        stages = []
        for i, layer in enumerate(self.backbone):
            x = layer(x)
            if i in TAPS["mobilenet"]:
                stages.append(x)
        size = stages[0].shape[-2:]
        proj = [F.interpolate(F.linear(s.permute(0, 2, 3, 1), m.proj.weight, m.proj.bias).permute(0, 3, 1, 2),
                              size=size, mode="bilinear", align_corners=False)
                for s, m in zip(stages, self.linear_c)]
        faces = self.linear_fuse(torch.cat(proj[::-1], 1))  # B x 256 x h x w
        b, _, h, w = faces.shape
        ys, xs = torch.meshgrid((torch.arange(h) + 0.5) / h, (torch.arange(w) + 0.5) / w, indexing="ij")
        coords = (2 * torch.stack([xs, ys], -1) - 1) @ self.pe_layer.positional_encoding_gaussian_matrix
        pe = torch.cat([torch.sin(2 * math.pi * coords), torch.cos(2 * math.pi * coords)], -1)  # h x w x 256
        dec = self.face_decoder
        tokens = torch.cat([getattr(dec, f"{n}_token").weight for n in self.token_names]).expand(b, -1, -1)
        tokens, seq = two_way_transformer(dec.transformer, faces.flatten(2).transpose(1, 2), pe.reshape(1, h * w, 256), tokens)
        up = dec.output_upscaling
        y = up[0](seq.transpose(1, 2).reshape(b, 256, h, w))
        mu = y.mean(1, keepdim=True)
        var = (y - mu).pow(2).mean(1, keepdim=True)
        y = (y - mu) / torch.sqrt(var + 1e-6) * up[1].weight[:, None, None] + up[1].bias[:, None, None]
        y = F.gelu(up[3](F.gelu(y)))  # B x 32 x 4h x 4w
        mlp = dec.output_hypernetwork_mlps.layers
        hyper = mlp[2](F.relu(mlp[1](F.relu(mlp[0](tokens)))))  # B x K x 32
        return (hyper @ y.flatten(2)).reshape(b, -1, *y.shape[-2:])


def save_release(module: nn.Module, path) -> None:
    state = module.state_dict()
    torch.save({
        "epoch": 299, "iteration": 12345, "state_dict_backbone": state,
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-6, "weight_decay": 1e-5, "betas": (0.9, 0.999)}]},
        "scheduler": {"milestones": collections.Counter({80: 1, 200: 1}), "gamma": 0.1, "last_epoch": 300},
    }, path)


@pytest.fixture(scope="module")
def release_mobilenet(tmp_path_factory):
    torch.manual_seed(0)
    release = ReleaseLayout("mobilenet", RELEASE_TOKEN_NAMES["celebamask-hq"]).eval()
    path = tmp_path_factory.mktemp("release") / "mobilenet_celeba_512" / "model_299.pt"
    path.parent.mkdir()
    save_release(release, path)
    return release, path


def test_convert_round_trips_logits(release_mobilenet, tmp_path):
    release, path = release_mobilenet
    model = convert_official(path, "mobilenet", "celebamask-hq", out=tmp_path / "ours")
    assert model.metadata["resolution"] == 512  # from the folder name
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        ours = model(x)
        reference = release.literal_forward(x)
        reloaded = load_checkpoint(tmp_path / "ours")(x)
    assert (ours - reference).abs().max() < 1e-5
    assert torch.equal(ours, reloaded)
    # token i of the file (label-id order) is row i of our token table
    assert torch.equal(model.face_decoder.class_tokens.weight[15], release.face_decoder.glass_token.weight[0])
    assert torch.equal(model.pe_layer.positional_encoding_gaussian_matrix,
                       release.pe_layer.positional_encoding_gaussian_matrix)


def test_wrong_taxonomy_or_backbone_says_what_the_file_holds(release_mobilenet):
    _, path = release_mobilenet
    with pytest.raises(DataError, match=r"19 class tokens \(celebamask-hq\) and a mobilenet backbone"):
        convert_official(path, "mobilenet", "lapa", resolution=512)
    with pytest.raises(DataError, match=r"a mobilenet backbone, not the requested efficientnet"):
        convert_official(path, "efficientnet", "celebamask-hq", resolution=512)


def test_refuses_pickled_code(tmp_path):
    sentinel = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    path = tmp_path / "x_512" / "model_299.pt"
    path.parent.mkdir()
    torch.save({"state_dict_backbone": {}, "scheduler": Evil()}, path)
    with pytest.raises(DataError, match="without executing code"):
        convert_official(path, "mobilenet", "celebamask-hq")
    assert not sentinel.exists()


FAST_MAPPING_CHECKS = ("swin_base", "resnet101", "mobilenet")


@pytest.mark.parametrize("backbone", [
    b if b in FAST_MAPPING_CHECKS else pytest.param(b, marks=pytest.mark.slow) for b in TORCHVISION_BACKBONES
])
def test_every_release_key_maps_for_every_backbone(backbone):
    names = RELEASE_TOKEN_NAMES["lapa/helen"]
    with torch.device("meta"):
        release = ReleaseLayout(backbone, names).state_dict()
        ours = SegFace(backbone, num_classes=11).state_dict()
    mapped = map_release_state(release, backbone)
    assert {k: tuple(v.shape) for k, v in mapped.items()} == {k: tuple(v.shape) for k, v in ours.items()}
    assert identify_backbone(release) == backbone
    # a few keys spelled out as the facts file names them
    assert release["face_decoder.transformer.layers.0.cross_attn_token_to_image.q_proj.weight"].shape == (128, 256)
    assert "face_decoder.transformer.norm_final_attn.weight" in release
    assert {k.split(".")[2] for k in release if k.startswith("face_decoder.output_upscaling")} == {"0", "1", "3"}


def test_convert_official_cli_writes_metadata(release_mobilenet, tmp_path):
    from lt_faceparse.cli import main
    from lt_faceparse.weights import read_metadata

    _, path = release_mobilenet
    assert main(["convert-official", "--src", str(path), "--backbone", "mobilenet",
                 "--taxonomy", "celebamask-hq", "--out", str(tmp_path / "conv")]) == 0
    meta = read_metadata(tmp_path / "conv")
    assert meta["model"] == "segface" and meta["taxonomy"] == CELEBAMASK_HQ.to_dict() and meta["resolution"] == 512
    assert meta["model_kwargs"]["backbone"] == "mobilenet" and meta["model_kwargs"]["num_classes"] == 19
    assert "mobilenet_celeba_512/model_299.pt" in meta["source"] and meta["warp"] is None
