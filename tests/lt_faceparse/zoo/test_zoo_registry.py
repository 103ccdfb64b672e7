"""The zoo registry: the 13 files of the SegFace release, the BiSeNet entry, `zoo list` in every format."""

import csv
import dataclasses
import io
import json

import pytest

from lt_faceparse.cli import main
from lt_faceparse.reporting.published import published_rows
from lt_faceparse.zoo import get_entry, register_entry, zoo_entries
from segface.backbones import TORCHVISION_BACKBONES

# The release's folders (authors' README), written out rather than taken from the registry.
RELEASE_FOLDERS = ["convnext_celeba_512", "efficientnet_celeba_512", "mobilenet_celeba_512", "resnet_celeba_512",
                   "swinv2b_celeba_512", *(f"swinb_celeba_{r}" for r in (224, 256, 448, 512)),
                   *(f"swinb_lapa_{r}" for r in (224, 256, 448, 512))]
PUBLISHED = {"convnext_celeba_512": 89.22, "efficientnet_celeba_512": 88.94, "mobilenet_celeba_512": 87.91,
             "resnet_celeba_512": 87.50, "swinv2b_celeba_512": 88.73, "swinb_celeba_224": 87.47,
             "swinb_celeba_256": 87.66, "swinb_celeba_448": 88.77, "swinb_celeba_512": 88.96,
             "swinb_lapa_224": 92.50, "swinb_lapa_256": 92.61, "swinb_lapa_448": 93.03, "swinb_lapa_512": 93.03}


def test_the_thirteen_release_files_are_registered_as_released():
    segface = zoo_entries("segface/*")
    assert [e.name for e in segface] == [f"segface/{f}" for f in RELEASE_FOLDERS]
    for entry, folder in zip(segface, RELEASE_FOLDERS):
        assert entry.hub_repo == "kartiknarayan/SegFace" and entry.file == f"{folder}/model_299.pt"
        assert entry.url == f"https://huggingface.co/kartiknarayan/SegFace/resolve/main/{folder}/model_299.pt"
        assert entry.backbone in TORCHVISION_BACKBONES
        assert entry.resolution == int(folder.rsplit("_", 1)[1])
        assert entry.taxonomy == ("lapa" if "_lapa_" in folder else "celebamask-hq")
        assert entry.merge == ("segface" if entry.taxonomy == "celebamask-hq" else None)
        assert entry.needs_landmarks == (entry.taxonomy == "lapa")
        assert entry.published_mean_f1 == PUBLISHED[folder]
        assert "non-commercial" in entry.licence.summary and "MIT" in entry.licence.weights
    assert [e.name for e in zoo_entries(dataset="lapa")] == [f"segface/swinb_lapa_{r}" for r in (224, 256, 448, 512)]


def test_published_means_are_the_rows_of_the_published_results_file():
    rows = {r["id"]: r for r in published_rows(include_duplicates=True)}
    for entry in zoo_entries("segface/*"):
        row = rows[entry.published_id]
        assert row["mean_f1"] == entry.published_mean_f1
        assert row["resolution"] == entry.resolution and row["backbone"] == entry.backbone
        assert row["dataset"] == entry.taxonomy


def test_bisenet_entry_is_a_user_supplied_file():
    entry = get_entry("face-parsing.pytorch/bisenet")
    assert entry.hub_repo is None and entry.file == "79999_iter.pth"
    assert "zllrunning/face-parsing.PyTorch" in entry.url and entry.merge == "zll"
    assert entry.published_mean_f1 is None and "test split included" in entry.train_data


def test_register_entry_refuses_a_taken_name_and_an_unknown_format():
    entry = get_entry("segface/mobilenet_celeba_512")
    with pytest.raises(KeyError, match="already registered"):
        register_entry(entry)
    with pytest.raises(ValueError, match="format"):
        register_entry(dataclasses.replace(entry, name="x/y", format="onnx"))
    with pytest.raises(KeyError, match="no released model 'x/y'"):
        get_entry("x/y")


@pytest.mark.parametrize("fmt", ["md", "csv", "json"])
def test_zoo_list_names_every_file_with_its_licence_terms(fmt, hf_cache, capsys):
    assert main(["zoo", "list", "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "json":
        rows = json.loads(out)
        assert [r["name"] for r in rows][:13] == [f"segface/{f}" for f in RELEASE_FOLDERS]
        assert all(r["cached"] == "no" and "non-commercial" in r["licence"]["data"] for r in rows)
        return
    if fmt == "csv":
        rows = list(csv.DictReader(io.StringIO(out)))
        assert [r["name"] for r in rows][:13] == [f"segface/{f}" for f in RELEASE_FOLDERS]
        by_name = {r["name"]: r for r in rows}
        assert by_name["segface/swinb_celeba_512"]["published mean F1"] == "88.96"
        assert by_name["face-parsing.pytorch/bisenet"]["published mean F1"] == "-"
        assert all("non-commercial research only" in r["licence terms"] for r in rows)
        return
    for folder in RELEASE_FOLDERS:
        assert f"| segface/{folder} |" in out
    assert out.count("non-commercial research only") == 14
