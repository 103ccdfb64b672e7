
import numpy as np
import pytest
from PIL import Image

from lt_faceparse.engine.score_predictions import score_prediction_folders
from lt_faceparse.cli import main
from lt_faceparse.errors import DataError
from lt_faceparse.records import load_record
from lt_faceparse.taxonomy import get_taxonomy

CELEBA = get_taxonomy("celebamask-hq")


def _png(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, np.uint8), mode="L").save(path)


@pytest.fixture
def folders(tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    # image a: skin (2) and nose (10), one ignore pixel; image b: hair (14) and hat (16)
    _png(gt / "a.png", [[2, 2, 10], [2, 10, 255]])
    _png(pred / "a.png", [[2, 10, 10], [2, 2, 0]])
    _png(gt / "b.png", [[14, 14], [16, 16]])
    _png(pred / "b.png", [[14, 16], [16, 16]])
    return gt, pred


def test_known_answer(folders):
    gt, pred = folders
    rec = score_prediction_folders(gt, pred, CELEBA)
    f1 = rec.per_class_f1()
    assert rec.num_images == 2
    assert f1["skin"] == pytest.approx(2 * 2 / (3 + 3))
    assert f1["nose"] == pytest.approx(2 * 1 / (2 + 2))
    assert f1["hair"] == pytest.approx(2 * 1 / (2 + 1))
    assert f1["hat"] == pytest.approx(2 * 2 / (2 + 3))
    assert "neck_l" in rec.undefined_classes and "skin" not in rec.undefined_classes
    assert rec.per_image.names == ("a", "b")
    assert rec.per_image.gt[0, CELEBA.id_of("skin")] == 3
    assert rec.provenance.protocol == "native"


def test_prediction_numbering_is_converted(folders, tmp_path):
    gt, _ = folders
    zll = tmp_path / "pred_zll"
    to_zll = CELEBA.lut_to("zll")
    _png(zll / "a.png", to_zll[np.array([[2, 10, 10], [2, 2, 0]], np.uint8)])
    _png(zll / "b.png", to_zll[np.array([[14, 16], [16, 16]], np.uint8)])
    ours = score_prediction_folders(gt, folders[1], CELEBA)
    conv = score_prediction_folders(gt, zll, CELEBA, numbering="zll")
    assert conv.confusion == ours.confusion


def test_errors_name_the_file(folders):
    gt, pred = folders
    (pred / "b.png").unlink()
    with pytest.raises(DataError, match=r"pred/b\.png: prediction missing"):
        score_prediction_folders(gt, pred, CELEBA)
    _png(pred / "b.png", [[14, 14, 14], [16, 16, 16]])
    with pytest.raises(DataError, match=r"pred/b\.png: prediction is 3x2, ground truth .*gt/b\.png is 2x2"):
        score_prediction_folders(gt, pred, CELEBA)
    _png(pred / "b.png", [[14, 14], [16, 40]])
    with pytest.raises(DataError, match=r"pred/b\.png: ids \[40\]"):
        score_prediction_folders(gt, pred, CELEBA)
    _png(pred / "b.png", [[14, 14], [16, 16]])
    _png(pred / "c.png", [[0]])
    with pytest.raises(DataError, match=r"pred/c\.png: prediction has no ground truth"):
        score_prediction_folders(gt, pred, CELEBA)


def test_score_cli_writes_record(folders, tmp_path, capsys):
    gt, pred = folders
    out = tmp_path / "rec" / "bisenet.json"
    assert main(["score", "--taxonomy", "celebamask-hq", "--gt", str(gt), "--pred", str(pred), "--out", str(out),
                 "--model", "bisenet", "--ci", "50"]) == 0
    rec = load_record(out)
    assert rec.provenance.model == "bisenet" and rec.ci["n_resamples"] == 50
    assert (tmp_path / "rec" / "bisenet.per_image.npz").is_file()
    printed = capsys.readouterr().out
    assert "mean F1 (foreground)" in printed and "without background" in printed
    _png(pred / "a.png", [[2, 2, 99], [2, 2, 0]])
    assert main(["score", "--taxonomy", "celebamask-hq", "--gt", str(gt), "--pred", str(pred),
                 "--out", str(out)]) == 2
    assert "pred/a.png" in capsys.readouterr().err


@pytest.mark.slow
def test_a_folder_taxonomy_is_named_by_its_class_list_or_a_weight_file(tmp_path):
    """`score --taxonomy` takes a folder dataset's classes.txt (or root) or a weight file trained on it,
    in a fresh process where that taxonomy was never registered."""
    import subprocess
    import sys

    from lt_faceparse.weights import resolve_taxonomy
    from lt_faceparse.engine.tiny import TinyParser
    from lt_faceparse.weights import save_model

    root = tmp_path / "mine"
    root.mkdir()
    (root / "classes.txt").write_text("background\nskin\thuman skin\nhair\n")
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    _png(gt / "a.png", [[0, 1, 1], [2, 2, 255]])
    _png(pred / "a.png", [[0, 1, 2], [2, 2, 2]])
    taxonomy = resolve_taxonomy(root / "classes.txt")
    assert taxonomy.names == ["background", "skin", "hair"] and taxonomy.display_names[1] == "human skin"
    assert resolve_taxonomy(root) == taxonomy and resolve_taxonomy("lapa").name == "lapa"
    weights = save_model(TinyParser(num_classes=3, width=4), tmp_path / "w.safetensors",
                         {"model": "tiny", "model_kwargs": {"num_classes": 3, "width": 4},
                          "taxonomy": taxonomy, "resolution": 16})
    with pytest.raises(DataError, match="not a class list"):
        resolve_taxonomy(gt / "a.png")
    for spec in (root / "classes.txt", weights):
        out = tmp_path / f"rec_{spec.suffix}"
        done = subprocess.run([sys.executable, "-m", "lt_faceparse", "score", "--taxonomy", str(spec), "--gt", str(gt),
                               "--pred", str(pred), "--out", str(out)], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        record = load_record(out / "record.json")
        # skin: 2 gt pixels, 1 predicted, 1 shared -> F1 2/3; hair: 2 gt, 3 predicted (the ignore pixel
        # does not count), 2 shared -> 4/5
        assert record.per_class_f1()["skin"] == pytest.approx(2 / 3)
        assert record.per_class_f1()["hair"] == pytest.approx(4 / 5)
        assert record.taxonomy == taxonomy.name
