"""Released models by name: offline from the cache, first use against a mocked Hub, clear errors,
user-supplied files with their SHA-256, licence terms in the converted weight files."""

import dataclasses

import numpy as np
import pytest
from PIL import Image

import huggingface_hub
from lt_faceparse.cli import main
from lt_faceparse.errors import DataError
from lt_faceparse.weights import read_metadata
from lt_faceparse.zoo import cache_state, get_entry, pretrained_weights, registry
from lt_faceparse.inference.parser import FaceParser, read_image
from zoo_testdata import put_in_hf_cache, write_release_mobilenet, write_zll_checkpoint

MOBILENET = "segface/mobilenet_celeba_512"


@pytest.fixture(scope="module")
def release_file(tmp_path_factory):
    """A release-format mobilenet_celeba_512/model_299.pt outside any cache."""
    return write_release_mobilenet(tmp_path_factory.mktemp("release") / "mobilenet_celeba_512" / "model_299.pt")


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(3)
    path = tmp_path / "photo.png"
    Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def no_download(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"hf_hub_download called: {args}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)


def test_offline_cached_parse_by_name_equals_convert_official_then_parse(
        release_file, hf_cache, photo, tmp_path, monkeypatch, no_download):
    snapshot = put_in_hf_cache(hf_cache, "kartiknarayan/SegFace", "mobilenet_celeba_512/model_299.pt", release_file)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert cache_state(get_entry(MOBILENET)) == "downloaded"
    assert main(["parse", "--model", MOBILENET, str(photo), "--out", str(tmp_path / "by-name")]) == 0
    assert cache_state(get_entry(MOBILENET)) == "converted"

    assert main(["convert-official", "--src", str(snapshot), "--backbone", "mobilenet", "--taxonomy",
                 "celebamask-hq", "--out", str(tmp_path / "converted")]) == 0
    assert main(["parse", "--checkpoint", str(tmp_path / "converted"), str(photo),
                 "--out", str(tmp_path / "by-file")]) == 0
    by_name = read_image(tmp_path / "by-name" / "photo_label.png")
    by_file = read_image(tmp_path / "by-file" / "photo_label.png")
    assert by_name.shape == (48, 40, 3) and np.array_equal(by_name, by_file)
    assert len(np.unique(by_name)) > 1  # a real parse, not a constant map


def test_mocked_hub_first_use_downloads_once_and_converts_once(release_file, hf_cache, monkeypatch):
    monkeypatch.delenv("LT_FACEPARSE_OFFLINE")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    downloads, conversions = [], []

    def fake_download(repo_id, filename, cache_dir=None, **kwargs):
        downloads.append((repo_id, filename))
        return str(put_in_hf_cache(cache_dir, repo_id, filename, release_file))

    import segface.convert

    real_convert = segface.convert.convert_official

    def counting_convert(*args, **kwargs):
        conversions.append(args[0])
        return real_convert(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(segface.convert, "convert_official", counting_convert)
    entry = get_entry(MOBILENET)
    assert cache_state(entry) == "no"
    first = pretrained_weights(MOBILENET)
    second = pretrained_weights(MOBILENET)
    parser = FaceParser.from_pretrained(MOBILENET)
    assert downloads == [("kartiknarayan/SegFace", "mobilenet_celeba_512/model_299.pt")]
    assert len(conversions) == 1 and first == second
    # cached beside the download, in the repo's folder of the Hugging Face cache
    assert first.parent == hf_cache / "models--kartiknarayan--SegFace" / "lt-faceparse"
    assert cache_state(entry) == "converted" and parser.resolution == 512 and parser.taxonomy.name == "celebamask-hq"
    meta = read_metadata(first)
    assert meta["licence"] == entry.licence.to_dict() and meta["zoo"]["name"] == MOBILENET
    assert meta["zoo"]["url"] == entry.url and meta["merge"] == "segface" and meta["resolution"] == 512
    assert meta["checkpoint_rule"].startswith("last epoch")


def test_offline_with_nothing_cached_is_one_clear_line(hf_cache, photo, tmp_path, monkeypatch, no_download, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["parse", "--model", MOBILENET, str(photo), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("lt-faceparse parse: error: released model " + MOBILENET)
    entry = get_entry(MOBILENET)
    assert entry.file in err and entry.url in err and str(hf_cache) in err and "HF_HUB_OFFLINE=1" in err
    assert not (tmp_path / "o").exists()


def test_failed_download_names_file_url_and_cache(hf_cache, monkeypatch):
    from huggingface_hub.errors import LocalEntryNotFoundError

    monkeypatch.delenv("LT_FACEPARSE_OFFLINE")

    def unreachable(*args, **kwargs):
        raise LocalEntryNotFoundError("cannot reach huggingface.co")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", unreachable)
    with pytest.raises(DataError, match=r"the download failed: LocalEntryNotFoundError: cannot reach") as err:
        pretrained_weights(MOBILENET)
    assert get_entry(MOBILENET).url in str(err.value) and str(hf_cache) in str(err.value)


def test_lapa_model_without_landmarks_stops_before_downloading(hf_cache, photo, tmp_path, no_download, capsys):
    assert main(["parse", "--model", "segface/swinb_lapa_512", str(photo), "--out", str(tmp_path / "o")]) == 2
    assert "trained on RoI tanh-warped faces: pass 5 (or 106) landmarks" in capsys.readouterr().err


def test_user_supplied_bisenet_is_checked_and_converted_beside_it(hf_cache, tmp_path, monkeypatch, capsys):
    entry = get_entry("face-parsing.pytorch/bisenet")
    assert main(["eval", "--model", entry.name, "--dataset", "celebamask-hq", "--root", str(tmp_path),
                 "--split", "test", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "zoo-home" / entry.name / "79999_iter.pth") in err and "zllrunning" in err

    placed = write_zll_checkpoint(tmp_path / "zoo-home" / entry.name / "79999_iter.pth")
    monkeypatch.setitem(registry._ZOO, entry.name, dataclasses.replace(entry, sha256="0" * 64))
    with pytest.raises(DataError, match="differs from the known 0000"):
        pretrained_weights(entry.name)

    import hashlib

    digest = hashlib.sha256(placed.read_bytes()).hexdigest()
    monkeypatch.setitem(registry._ZOO, entry.name, dataclasses.replace(entry, sha256=digest.upper()))
    weights = pretrained_weights(entry.name)
    assert weights.parent == placed.parent and weights.name.endswith(f"{digest[:16]}.safetensors")
    meta = read_metadata(weights)
    assert meta["model"] == "bisenet" and meta["source_sha256"] == digest and meta["merge"] == "zll"
    assert meta["licence"]["summary"].startswith("non-commercial research only")


@pytest.mark.parametrize("weights", [[], ["--checkpoint", "w.safetensors", "--model", MOBILENET]])
def test_parse_and_eval_take_exactly_one_of_checkpoint_and_model(weights, capsys):
    for command in (["parse", "img.png", "--out", "o"],
                    ["eval", "--dataset", "celebamask-hq", "--root", "r", "--split", "test", "--out", "o"]):
        with pytest.raises(SystemExit) as stop:
            main([*command, *weights])
        assert stop.value.code == 2 and "--checkpoint" in capsys.readouterr().err
