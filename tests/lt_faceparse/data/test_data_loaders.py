"""LaPa, Helen and folder specifics; build_dataset, samples, iter_labels and make_loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import write_jpg, write_png

from lt_faceparse.data import Batch, build_dataset, iter_labels, make_loader
from lt_faceparse.data.helen import crop_box, helen_splits
from lt_faceparse.data.lapa import affine_matrix, apply_affine, random_affine, read_landmarks_106
from lt_faceparse.errors import DataError
from lt_faceparse.taxonomy import get_taxonomy


def test_read_landmarks_106(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("106\n" + "".join(f"{i} {2 * i}.5\n" for i in range(106)))
    lm = read_landmarks_106(path)
    assert lm.shape == (106, 2) and lm[105].tolist() == [105.0, 210.5]
    path.write_text("68\n" + "1 2\n" * 68)
    with pytest.raises(DataError, match="a.txt: expected 106 points"):
        read_landmarks_106(path)
    path.write_text("1 2\n" * 106)
    with pytest.raises(DataError, match="point count"):
        read_landmarks_106(path)


def test_affine_moves_landmarks_with_the_pixels():
    h, w = 60, 80
    image = np.zeros((h, w, 3), dtype=np.uint8)
    label = np.zeros((h, w), dtype=np.uint8)
    label[20:23, 50:53] = 7  # a 3 x 3 blob centred on pixel (51, 21)
    image[20:23, 50:53] = 255
    lm = np.array([[51.0, 21.0]], dtype=np.float32)
    m = affine_matrix(30.0, 1.5, (4.0, -3.0), (w / 2, h / 2))
    img2, lab2, lm2 = apply_affine(image, label, lm, m)
    ys, xs = np.nonzero(lab2 == 7)
    assert abs(xs.mean() - lm2[0, 0]) < 0.5 and abs(ys.mean() - lm2[0, 1]) < 0.5
    assert lab2.shape == (h, w) and set(np.unique(lab2)) <= {0, 7}  # nearest: no new ids, fill 0
    # continuous-coordinate centre stays fixed under a pure rotation + scale about it
    m0 = affine_matrix(-20.0, 2.0, (0.0, 0.0), (w / 2, h / 2))
    _, _, c = apply_affine(image, None, np.array([[w / 2 - 0.5, h / 2 - 0.5]], np.float32), m0)
    np.testing.assert_allclose(c, [[w / 2 - 0.5, h / 2 - 0.5]], atol=1e-5)
    # released ranges: rotation within 30 deg, scale within [0.5, 3], shift within 20 px
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        _, _, moved = random_affine(image, None, np.array([[w / 2 - 0.5, h / 2 - 0.5]], np.float32), g)
        assert np.abs(moved - [w / 2 - 0.5, h / 2 - 0.5]).max() <= 20.0 + 1e-4


def test_lapa_training_samples_are_augmented(synth_sets):
    plain = build_dataset("lapa", synth_sets["lapa"], "train", resolution=32)
    aug = build_dataset("lapa", synth_sets["lapa"], "train", resolution=32, train=True)
    torch.manual_seed(0)
    a, b = plain[0], aug[0]
    assert a.landmarks.shape == (106, 2) and not torch.equal(a.landmarks, b.landmarks)
    assert a.label.shape == b.label.shape == (32, 32)
    with pytest.raises(ValueError, match="106-point"):
        build_dataset("lapa", synth_sets["lapa"], "train", resolution=32, flip="always")[0]


def test_helen_crop_box_known_answer():
    pts = np.array([[10.0, 20.0], [30.0, 20.0], [20.0, 60.0]])  # bbox 20 x 40, centre (20, 40)
    # side 1.2 * 40 = 48: x from -4 to 44 (clipped at 0), y from 16 to 64
    assert crop_box(pts, (100, 100)) == (0, 16, 45, 65)
    assert crop_box(pts, (50, 30)) == (0, 16, 30, 50)


def test_helen_splits_val_list(tmp_path):
    for folder, names in (("train", ["a", "b", "c"]), ("test", ["x", "y"])):
        for n in names:
            write_jpg(tmp_path / folder / f"{n}_image.jpg", np.zeros((4, 4, 3), np.uint8))
    s = helen_splits(tmp_path)
    assert [n for _, n in s["val"]] == ["x", "y"] == [n for _, n in s["test"]]  # val = test
    (tmp_path / "val.txt").write_text("b\ny\n")
    s = helen_splits(tmp_path)
    assert s == {"train": [("train", "a"), ("train", "c")], "val": [("train", "b"), ("test", "y")],
                 "test": [("test", "x")]}
    (tmp_path / "val.txt").write_text("zz\n")
    with pytest.raises(DataError, match="val.txt"):
        helen_splits(tmp_path)


def test_folder_dataset_all_split_palette_and_custom_classes(tmp_path):
    root = tmp_path / "faces"
    root.mkdir()
    (root / "classes.txt").write_text("background\nskin\nl_eye\nr_eye\n")
    label = np.array([[0, 1, 2, 3]], dtype=np.uint8).repeat(4, 0)
    write_jpg(root / "images" / "one.jpg", np.full((4, 4, 3), 90, np.uint8))
    from PIL import Image

    pal = Image.fromarray(label, mode="L")
    pal.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255] + [0] * 756)
    (root / "labels").mkdir()
    pal.save(root / "labels" / "one.png")
    ds = build_dataset("folder", root, "all", resolution=None)
    assert ds.taxonomy.name == "folder:faces" and ds.taxonomy.flip_pairs == ((2, 3),)
    assert get_taxonomy("folder:faces") is ds.taxonomy  # registered for metrics and reports
    np.testing.assert_array_equal(ds.read_label(0), label)
    flipped = build_dataset("folder", root, "all", resolution=None, flip="always")[0]
    np.testing.assert_array_equal(flipped.label.numpy(), [[2, 3, 1, 0]] * 4)  # mirrored, eyes swapped
    with pytest.raises(DataError, match="no split 'train'"):
        build_dataset("folder", root, "train")
    # unlabeled folder: images only
    write_png(tmp_path / "raw" / "images" / "p.png", np.zeros((6, 4, 3), np.uint8))
    (tmp_path / "raw" / "classes.txt").write_text("background\nface\n")
    raw = build_dataset("folder", tmp_path / "raw", "all", resolution=8)
    s = raw[0]
    assert s.label is None and s.orig_size == (6, 4) and s.image.shape == (3, 8, 8)


def test_build_dataset_arguments(synth_sets):
    with pytest.raises(KeyError, match="unknown dataset"):
        build_dataset("pascal", synth_sets["lapa"], "train")
    with pytest.raises(ValueError, match="taxonomy"):
        build_dataset("lapa", synth_sets["lapa"], "train", taxonomy="celebamask-hq")
    with pytest.raises(ValueError, match="split"):
        build_dataset("lapa", synth_sets["lapa"], "dev")
    ds = build_dataset("celebamask", synth_sets["celebamask-hq"], "train", resolution=48, resize_mode="pad")
    d = ds.describe()
    assert d["dataset"] == "synthface-lt" and d["format"] == "celebamask-hq"  # generated, in the real layout
    assert d["merge"] == "segface" and d["num_images"] == 8
    assert d["taxonomy"] == "celebamask-hq" and d["resolution"] == 48


def test_iter_labels_parallel_equals_serial_and_loader_batches(synth_sets):
    ds = build_dataset("helen", synth_sets["helen"], "train", resolution=32)
    serial = list(iter_labels(ds))
    parallel = list(iter_labels(ds, num_workers=2))
    assert [i for i, _ in parallel] == list(range(len(ds)))
    for (_, a), (_, b) in zip(serial, parallel):
        np.testing.assert_array_equal(a, b)
    loader = make_loader(ds, 3, shuffle=True, num_workers=0, seed=1)
    batches = list(loader)
    assert all(isinstance(b, Batch) for b in batches)
    first = batches[0]
    assert first.images.shape == (3, 3, 32, 32) and first.labels.shape == (3, 32, 32)
    assert first.landmarks.shape == (3, 68, 2) and first.taxonomy == "helen"
    assert sorted(i for b in batches for i in b.indices.tolist()) == list(range(len(ds)))
    # the orig sizes are the crops' label sizes
    for b in batches:
        for idx, hw in zip(b.indices.tolist(), b.orig_sizes.tolist()):
            assert tuple(hw) == ds.read_label(idx).shape
    order = [b.indices.tolist() for b in make_loader(ds, 3, shuffle=True, num_workers=0, seed=1)]
    assert order == [b.indices.tolist() for b in batches]  # same seed, same order
    workers = list(make_loader(ds, 4, shuffle=False, num_workers=2))
    torch.testing.assert_close(workers[0].labels, torch.stack([ds[i].label for i in range(4)]))


def test_source_dataset_names_generated_data_and_keeps_real_trees(synth_sets, tmp_path):
    import shutil

    assert build_dataset("lapa", synth_sets["lapa"], "test").source_dataset == "synthface-lt"
    real = tmp_path / "LaPa"
    shutil.copytree(synth_sets["lapa"], real)
    (real / "presence.json").unlink()  # a tree as distributed has no generator marker
    ds = build_dataset("lapa", real, "test")
    assert ds.source_dataset == "lapa" and ds.describe()["dataset"] == "lapa"
