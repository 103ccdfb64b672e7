"""check-dataset: each bad input gives its error; loaders raise DataError naming the file."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from conftest import _mask, make_celeba_tree, write_png

from lt_faceparse.data import build_dataset
from lt_faceparse.data.check import ERROR, WARNING, check_dataset
from lt_faceparse.errors import DataError


def _find(problems, level, path_part, text):
    return [p for p in problems if p.level == level and path_part in p.path and text in p.problem]


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_clean_synthetic_sets_only_warn_about_split_sizes(synth_sets):
    for fmt, root in synth_sets.items():
        problems = check_dataset(fmt, root)
        assert all(p.level == WARNING for p in problems), problems
        if fmt != "folder":
            assert len(problems) == 3 and all("published" in p.problem for p in problems)
    problems = check_dataset("celebamask-hq", synth_sets["celebamask-hq"])
    assert _find(problems, WARNING, "", "split 'train' has 8 images; the published CelebAMask-HQ split has 24,183")


def test_celebamask_bad_inputs_all_reported_in_one_pass(tmp_path):
    root = make_celeba_tree(tmp_path / "c", {0: 1, 1: 2, 2: 3, 3: 4, 4: 5})
    masks = root / "CelebAMask-HQ-mask-anno" / "0"
    (root / "CelebA-HQ-img" / "1.jpg").unlink()  # missing image
    _truncate(root / "CelebA-HQ-img" / "2.jpg")  # truncated image
    write_png(masks / "00003_hair.png", np.zeros((5, 5), np.uint8))  # mask size differs from the others
    write_png(masks / "00000_beard.png", _mask([(0, 0)]))  # unknown part
    shutil.move(masks / "00004_nose.png", root / "CelebAMask-HQ-mask-anno" / "00004_nose.png")
    (root / "CelebAMask-HQ-mask-anno" / "1").mkdir()
    shutil.move(root / "CelebAMask-HQ-mask-anno" / "00004_nose.png", root / "CelebAMask-HQ-mask-anno" / "1")
    for p in masks.glob("00000_*.png"):  # image 0 loses all its masks except the unknown one
        if "beard" not in p.name:
            p.unlink()
    write_png(masks / "00004_skin.png", _mask([(0, 0)]))
    _truncate(masks / "00004_skin.png")  # truncated mask
    (root / "list_eval_partition.txt").write_text("000002.jpg 0\n000003.jpg 0\n000004.jpg 1\n000005.jpg 2\n")

    problems = check_dataset("celebamask-hq", root)
    assert _find(problems, ERROR, "1.jpg", "image file missing")
    assert _find(problems, ERROR, "2.jpg", "truncated")
    assert _find(problems, ERROR, "00003_hair.png", "mask size 5x5 differs")
    assert _find(problems, ERROR, "00000_beard.png", "unknown part 'beard'")
    assert _find(problems, ERROR, "00004_nose.png", "must be in folder 0")
    assert _find(problems, ERROR, "0.jpg", "no mask files")
    assert _find(problems, ERROR, "00004_skin.png", "truncated")
    assert _find(problems, ERROR, "list_eval_partition.txt", "000001.jpg (HQ image 0) is not listed")
    assert _find(problems, WARNING, "", "split 'val' has 1 images")
    assert [p.level for p in problems] == sorted((p.level for p in problems), key=lambda lv: lv != ERROR)

    # loaders raise DataError naming the file
    with pytest.raises(DataError, match="000001.jpg .HQ image 0. is not listed"):
        build_dataset("celebamask-hq", root, "train", cache_dir=False)
    (root / "list_eval_partition.txt").unlink()
    ds = build_dataset("celebamask-hq", root, "train", resolution=None, cache_dir=False)
    with pytest.raises(DataError, match="2.jpg: unreadable or truncated"):
        ds.read_image(ds.names.index("2"))
    with pytest.raises(DataError, match="00003_hair.png: mask size"):
        ds.read_label(ds.names.index("3"))

    (root / "CelebA-HQ-to-CelebA-mapping.txt").unlink()
    assert _find(check_dataset("celebamask-hq", root), ERROR, "CelebA-HQ-to-CelebA-mapping.txt", "not found")
    with pytest.raises(DataError, match="mapping file not found"):
        build_dataset("celebamask-hq", root, "train")


def test_lapa_bad_inputs(synth_sets, tmp_path):
    root = tmp_path / "lapa"
    shutil.copytree(synth_sets["lapa"], root)
    names = sorted(p.stem for p in (root / "train" / "images").iterdir())
    a, b, c, d, e, f = names[:6]
    (root / "train" / "labels" / f"{a}.png").unlink()  # missing label
    _truncate(root / "train" / "images" / f"{b}.jpg")  # truncated image
    write_png(root / "train" / "labels" / f"{c}.png", np.zeros((7, 9), np.uint8))  # size mismatch
    lab = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(root / "train" / "labels" / f"{d}.png")).copy()
    lab[0, 0] = 12
    write_png(root / "train" / "labels" / f"{d}.png", lab)  # id outside the taxonomy
    (root / "train" / "landmarks" / f"{e}.txt").write_text("106\n1 2\n")  # too few points
    (root / "train" / "landmarks" / f"{f}.txt").unlink()  # missing landmarks
    write_png(root / "train" / "labels" / "orphan.png", np.zeros((4, 4), np.uint8))  # label without image

    problems = check_dataset("lapa", root)
    assert _find(problems, ERROR, f"labels/{a}.png", "label file missing")
    assert _find(problems, ERROR, f"images/{b}.jpg", "truncated")
    assert _find(problems, ERROR, f"labels/{c}.png", "label size 9x7 does not match its image")
    assert _find(problems, ERROR, f"labels/{d}.png", "label ids [12] outside the taxonomy's 0..10")
    assert _find(problems, ERROR, f"landmarks/{e}.txt", "expected 106 points")
    assert _find(problems, ERROR, f"landmarks/{f}.txt", "landmark file missing")
    assert _find(problems, ERROR, "orphan.png", "label without an image")
    assert len([p for p in problems if p.level == ERROR]) == 7

    ds = build_dataset("lapa", root, "train", resolution=None)
    with pytest.raises(DataError, match=rf"{d}.png: label ids \[12\]"):
        ds.read_label(ds.names.index(d))
    with pytest.raises(DataError, match=rf"{e}.txt: expected 106 points"):
        ds.read_landmarks(ds.names.index(e))
    with pytest.raises(DataError, match=rf"{c}.jpg: image size 64x\d+ and label size 9x7 differ"):
        ds[ds.names.index(c)]


def test_helen_and_folder_bad_inputs(synth_sets, tmp_path):
    helen = tmp_path / "helen"
    shutil.copytree(synth_sets["helen"], helen)
    lines = (helen / "landmarks.txt").read_text().splitlines()
    dropped = lines[0].split()[-1]
    short = lines[1].split()
    (helen / "landmarks.txt").write_text("\n".join(lines[2:]) + "\n")
    problems = check_dataset("helen", helen)
    missing = _find(problems, ERROR, f"{dropped}_image.jpg", "no line for this image in landmarks.txt")
    assert missing and len([p for p in problems if p.level == ERROR]) == 2
    (helen / "landmarks.txt").write_text(" ".join(short[:-3] + short[-1:]) + "\n")
    assert _find(check_dataset("helen", helen), ERROR, "landmarks.txt", "expected 136 numbers then the name")

    folder = tmp_path / "folder"
    shutil.copytree(synth_sets["folder"], folder)
    img_name = sorted((folder / "train" / "images").iterdir())[0].stem
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[..., 0] = 200
    write_png(folder / "train" / "labels" / f"{img_name}.png", rgb)  # colour label, not ids
    problems = check_dataset("folder", folder)
    assert _find(problems, ERROR, f"{img_name}.png", "mode 'RGB'")
    (folder / "classes.txt").unlink()
    assert _find(check_dataset("folder", folder), ERROR, "classes.txt", "class list not found")
    assert check_dataset("lapa", tmp_path / "nowhere")[0].problem == "dataset root folder not found"
