"""`pretrained: true` fetches ImageNet weights once into torchvision's / timm's caches, reuses them,
and honours the offline switches. The downloaders are mocked: nothing here touches the network."""

import os
import urllib.error
from pathlib import Path

import pytest
import torch

from lt_faceparse import pretrained as P


@pytest.fixture
def torch_cache(tmp_path, monkeypatch):
    """A fresh torch hub cache under TORCH_HOME, online, with a recording fake of torch's downloader
    that writes ``state`` (set by the test) where torch hub asked for the file."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # get_dir() follows TORCH_HOME
    monkeypatch.delenv("LT_FACEPARSE_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    calls = []
    holder = {}

    def fake_download(url, dst, hash_prefix=None, progress=True):
        calls.append((url, dst, hash_prefix))
        torch.save(holder["state"], dst)

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_download)
    return tmp_path / "torch" / "hub" / "checkpoints", calls, holder


def _state(builder: str, seed: int) -> dict[str, torch.Tensor]:
    import torchvision

    torch.manual_seed(seed)
    return torchvision.models.get_model(builder, weights=None).state_dict()


def test_torchvision_backbone_downloads_once_into_the_hub_cache_then_reuses_it(torch_cache):
    from torchvision.models import MobileNet_V3_Large_Weights

    from segface.backbones import build_backbone

    checkpoints, calls, holder = torch_cache
    holder["state"] = _state("mobilenet_v3_large", 3)
    url = MobileNet_V3_Large_Weights.DEFAULT.url
    first = build_backbone("mobilenet", pretrained=True)
    assert [c[0] for c in calls] == [url]
    assert calls[0][1] == str(checkpoints / os.path.basename(url))  # torch hub's own cache, file name kept
    assert calls[0][2] == os.path.basename(url).split("-")[-1].split(".")[0]  # the SHA-256 prefix is checked
    assert (checkpoints / os.path.basename(url)).is_file()
    assert torch.equal(first.features[16][0].weight, holder["state"]["features.16.0.weight"])

    second = build_backbone("mobilenet", pretrained=True)
    assert len(calls) == 1  # read from the cache, the downloader is not called again
    assert torch.equal(second.features[16][0].weight, first.features[16][0].weight)

    from baselines.fcn import FCN

    fcn = FCN(backbone="mobilenet", num_classes=3, pretrained=True)  # the baselines share the cache
    assert len(calls) == 1 and torch.equal(fcn.backbone.features[16][0].weight, first.features[16][0].weight)


@pytest.mark.parametrize("switch", ["LT_FACEPARSE_OFFLINE", "HF_HUB_OFFLINE"])
def test_offline_mode_raises_the_clear_error_without_downloading(torch_cache, monkeypatch, switch):
    from segface.backbones import build_backbone

    checkpoints, calls, _ = torch_cache
    monkeypatch.setenv(switch, "1")
    with pytest.raises(FileNotFoundError) as err:
        build_backbone("mobilenet", pretrained=True)
    message = str(err.value)
    assert "mobilenet_v3_large" in message and f"offline mode ({switch}=1)" in message
    assert str(checkpoints) in message and "https://download.pytorch.org/" in message  # where to put what
    assert calls == []


def test_failed_download_says_what_is_missing_and_where_it_goes(torch_cache, monkeypatch):
    from segface.backbones import build_backbone

    checkpoints, _, _ = torch_cache

    def no_network(url, dst, hash_prefix=None, progress=True):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    with pytest.raises(FileNotFoundError, match=r"downloading it failed \(<urlopen error Name or service") as err:
        build_backbone("mobilenet", pretrained=True)
    assert str(checkpoints) in str(err.value)


def test_bisenet_resnet18_uses_the_same_cache(torch_cache):
    from torchvision.models import ResNet18_Weights

    from baselines.bisenet import BiSeNet

    checkpoints, calls, holder = torch_cache
    holder["state"] = _state("resnet18", 5)
    model = BiSeNet(num_classes=3, pretrained=True)
    assert [c[0] for c in calls] == [ResNet18_Weights.IMAGENET1K_V1.url]
    assert torch.equal(model.cp.resnet.layer4[1].conv2.weight, holder["state"]["layer4.1.conv2.weight"])
    BiSeNet(num_classes=3, pretrained=True)
    assert len(calls) == 1


def test_unknown_weight_name_is_named(torch_cache):
    with pytest.raises(FileNotFoundError, match=r"'IMAGENET9K' is neither a file nor a weight name.*IMAGENET1K_V1"):
        P.torchvision_state("resnet18", "IMAGENET9K")


# ---- timm: Hugging Face Hub -----------------------------------------------------------------------

TIMM_NAME = "mobilenetv3_small_100"


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache, online, with a fake hf_hub_download that stores ``state`` the way
    the hub client lays out its cache (so try_to_load_from_cache finds it afterwards)."""
    import huggingface_hub
    from huggingface_hub import constants
    from safetensors.torch import save_file

    cache = tmp_path / "hf"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.delenv("LT_FACEPARSE_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    calls = []
    holder = {}

    def fake_hf_hub_download(repo_id, filename, revision=None, **kwargs):
        calls.append((repo_id, filename))
        folder = cache / f"models--{repo_id.replace('/', '--')}"
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / "main").write_text("0" * 40)
        path = folder / "snapshots" / ("0" * 40) / filename
        path.parent.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous().clone() for k, v in holder["state"].items()}, str(path))
        return str(path)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_hf_hub_download)
    return cache, calls, holder


def test_timm_backbone_downloads_through_the_hub_once_then_reuses_the_cache(hf_cache):
    import timm

    from segface.backbones import build_backbone

    cache, calls, holder = hf_cache
    torch.manual_seed(6)
    holder["state"] = timm.create_model(TIMM_NAME).state_dict()
    repo = timm.models.get_pretrained_cfg(TIMM_NAME).hf_hub_id
    first = build_backbone(f"timm/{TIMM_NAME}", pretrained=True)
    assert calls == [(repo, "model.safetensors")]
    assert torch.equal(first.model.conv_stem.weight, holder["state"]["conv_stem.weight"])
    second = build_backbone(f"timm/{TIMM_NAME}", pretrained=True)
    assert len(calls) == 1
    assert torch.equal(second.model.conv_stem.weight, holder["state"]["conv_stem.weight"])
    assert P.timm_pretrained_file(TIMM_NAME, True).is_relative_to(cache)


def test_timm_offline_raises_without_downloading(hf_cache, monkeypatch):
    from segface.backbones import build_backbone

    cache, calls, _ = hf_cache
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError) as err:
        build_backbone(f"timm/{TIMM_NAME}", pretrained=True)
    assert "not in the Hugging Face cache" in str(err.value) and str(cache) in str(err.value)
    assert "offline mode (HF_HUB_OFFLINE=1)" in str(err.value)
    assert calls == []


def test_offline_switch_values(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for value, expected in [("1", True), ("true", True), ("ON", True), ("0", False), ("", False)]:
        monkeypatch.setenv("LT_FACEPARSE_OFFLINE", value)
        assert P.offline() is expected, value


def test_local_file_wins_and_is_read_without_pickled_code(tmp_path):
    path = tmp_path / "w.pth"
    torch.save({"state_dict": {"a": torch.ones(2)}}, path)
    assert P.load_state_file(path)["a"].tolist() == [1.0, 1.0]
    evil = tmp_path / "evil.pth"
    torch.save({"a": Path("x")}, evil)  # an arbitrary object: refused by weights_only
    with pytest.raises(Exception, match="not a loadable weight file"):
        P.load_state_file(evil)
