import pytest
import torch

from baselines.bisenet import BiSeNet
from baselines.convert_zll import convert_zll, export_zll
from lt_faceparse.cli import main
from lt_faceparse.errors import DataError
from lt_faceparse.taxonomy import get_taxonomy
from lt_faceparse.weights import load_model, read_metadata
from zll_reference import random_zll_state_dict

torch.set_num_threads(1)

# face-parsing.PyTorch's class list (datasets.md), written out here rather than taken from the taxonomy.
ZLL_NAMES = ["background", "skin", "l_brow", "r_brow", "l_eye", "r_eye", "eye_g", "l_ear", "r_ear", "ear_r",
             "nose", "mouth", "u_lip", "l_lip", "neck", "neck_l", "cloth", "hair", "hat"]


@pytest.fixture
def zll_checkpoint(tmp_path):
    path = tmp_path / "79999_iter.pth"
    torch.save(random_zll_state_dict(19, seed=1), path)
    return path


def test_hair_logits_move_from_zll_17_to_our_14(tmp_path):
    state = random_zll_state_dict(19)
    # Make the last feature map constant 1 (BN scale 0, shift 1 before ReLU) and let only zll class 17 see it.
    state["conv_out.conv.bn.weight"].zero_()
    state["conv_out.conv.bn.bias"].fill_(1.0)
    state["conv_out.conv_out.weight"].zero_()
    state["conv_out.conv_out.weight"][17] = 1.0
    path = tmp_path / "hair.pth"
    torch.save(state, path)
    model = convert_zll(path)
    with torch.no_grad():
        logits = model(torch.randn(1, 3, 32, 32))
    assert get_taxonomy("celebamask-hq").names[14] == "hair"
    # 256 features of value 1 (bilinear upsampling of a constant map may round in the last bit)
    torch.testing.assert_close(logits[:, 14], torch.full((1, 32, 32), 256.0))
    assert torch.all(logits[:, [i for i in range(19) if i != 14]] == 0.0)


def test_every_class_lands_on_its_name(zll_checkpoint):
    raw = BiSeNet(num_classes=19).eval()
    raw.load_state_dict(torch.load(zll_checkpoint, weights_only=True), strict=True)
    converted = convert_zll(zll_checkpoint)
    ours = get_taxonomy("celebamask-hq").names
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a, b = raw(images), converted(images)
    for zll_id, name in enumerate(ZLL_NAMES):
        torch.testing.assert_close(b[:, ours.index(name)], a[:, zll_id], rtol=0, atol=0)


def test_old_checkpoint_without_bn_counters_loads(tmp_path):
    state = {k: v for k, v in random_zll_state_dict(19).items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "old.pth"
    torch.save(state, path)
    assert convert_zll(path).conv_out.conv_out.weight.shape == (19, 256, 1, 1)


def test_bad_checkpoints_name_the_file(tmp_path):
    state = random_zll_state_dict(19)
    del state["cp.arm16.conv_atten.weight"]
    missing = tmp_path / "missing.pth"
    torch.save(state, missing)
    with pytest.raises(DataError, match=r"missing\.pth.*cp\.arm16\.conv_atten\.weight"):
        convert_zll(missing)

    eleven = tmp_path / "eleven.pth"
    torch.save(random_zll_state_dict(11), eleven)
    with pytest.raises(DataError, match=r"eleven\.pth: classifier has 11 classes"):
        convert_zll(eleven)

    pickled = tmp_path / "code.pth"
    torch.save({"net": torch.nn.Linear(2, 2)}, pickled)  # a pickled module: refused by weights_only
    with pytest.raises(DataError, match=r"code\.pth: not a loadable weights-only"):
        convert_zll(pickled)


def test_cli_writes_a_portable_weight_file(zll_checkpoint, tmp_path):
    out = tmp_path / "bisenet-zll"
    assert main(["convert-zll", "--src", str(zll_checkpoint), "--out", str(out)]) == 0
    meta = read_metadata(out)
    assert meta["merge"] == "zll" and meta["numbering"] == "zll" and meta["trained_on_test"] is True
    assert meta["model_kwargs"]["numbering"] == "zll" and meta["source_file"] == "79999_iter.pth"
    assert "test split included" in meta["source"]
    model, _ = load_model(out)
    images = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(images), convert_zll(zll_checkpoint)(images))
    assert export_zll(zll_checkpoint, tmp_path / "x.safetensors").name == "x.safetensors"


def test_cli_reports_missing_source(tmp_path, capsys):
    assert main(["convert-zll", "--src", str(tmp_path / "nope.pth"), "--out", str(tmp_path)]) == 2
    assert "nope.pth" in capsys.readouterr().err
