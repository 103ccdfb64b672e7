"""Cases of the bad-input catalogue on the data side: class lists, labels, dataset trees, ``freq``,
``check-dataset``, ``parse``, output folders and pretrained files (see test_bad_inputs.py)."""

from __future__ import annotations

import errno
import pickle
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from bad_input_data import (CLASSES, SIZE, error_line, folder_set, python_process, run, run_process, tiny_weights,
                            truncate, write_image)



def _bad_label(root: Path, split: str = "test", value: int = 9) -> Path:
    path = sorted((root / split / "labels").glob("*.png"))[1]
    write_image(path, np.full((SIZE, SIZE), value, np.uint8))
    return path


def errors_pickle(tmp_path, capsys, monkeypatch):
    from lt_faceparse.engine.preemption import Preempted
    from lt_faceparse.errors import BatchIncomplete, DataError

    for err in (DataError("/a.png", "bad"), Preempted("stopped", signum=15, checkpoint="c.pt"),
                BatchIncomplete("1 of 2", failures=[("x", "bad")], done=1)):
        back = pickle.loads(pickle.dumps(err))
        assert type(back) is type(err) and str(back) == str(err) and back.__dict__ == err.__dict__


def _freq_ends_quickly(tmp_path: Path, root: Path, bad: Path, *extra: str) -> None:
    start = time.monotonic()
    done = run_process("freq", "--dataset", *extra, "--root", root, "--split", "test", "--workers", "2",
                       "--out", tmp_path / "freq", timeout=90)
    assert time.monotonic() - start < 60
    assert done.returncode == 2 and bad.name in error_line(done.stderr)


def freq_workers_bad_label(tmp_path, capsys, monkeypatch):
    root = folder_set(tmp_path / "set")
    bad = _bad_label(root)
    _freq_ends_quickly(tmp_path, root, bad, "folder")
    assert "[9]" in error_line(run_process("freq", "--dataset", "folder", "--root", root, "--split", "test",
                                           "--workers", "2", "--out", tmp_path / "f2", timeout=90).stderr)


def freq_workers_celeba_mask_size(tmp_path, capsys, monkeypatch):
    from bad_input_celeba import celeba_tree

    root = celeba_tree(tmp_path / "celeba", 6)
    bad = sorted((root / "CelebAMask-HQ-mask-anno" / "0").glob("*_hair.png"))[2]
    write_image(bad, np.full((5, 5), 255, np.uint8))
    _freq_ends_quickly(tmp_path, root, bad, "celebamask-hq")


def api_frequencies_workers_bad_label(tmp_path, capsys, monkeypatch):
    root = folder_set(tmp_path / "set")
    bad = _bad_label(root)
    done = python_process(
        "from lt_faceparse.analysis.frequency import compute_class_frequencies\n"
        "from lt_faceparse.data import build_dataset\n"
        "from lt_faceparse.errors import DataError\n"
        f"ds = build_dataset('folder', {str(root)!r}, 'test', resolution=None)\n"
        "try:\n    compute_class_frequencies(ds, num_workers=1)\n"
        "except DataError as err:\n    print('DataError', err)\n", timeout=90)
    assert done.stdout.startswith("DataError") and bad.name in done.stdout, done.stderr


def classes_bom(tmp_path, capsys, monkeypatch):
    from lt_faceparse.data.folder import taxonomy_for_folder

    root = folder_set(tmp_path / "set")
    (root / "classes.txt").write_bytes(b"\xef\xbb\xbf" + "\n".join(CLASSES).encode() + b"\n")
    taxonomy = taxonomy_for_folder(root)
    assert taxonomy.names[0] == "background" and taxonomy.classes[0].kind == "background"
    assert run(capsys, "freq", "--dataset", "folder", "--root", root, "--split", "test",
               "--out", tmp_path / "freq")[0] == 0
    assert (tmp_path / "freq" / "class_frequencies.pdf").is_file()


def classes_latin1(tmp_path, capsys, monkeypatch):
    root = folder_set(tmp_path / "set")
    (root / "classes.txt").write_bytes("background\nskin Peau\nhair Cheveux\nnose Nez épaté\n".encode("latin-1"))
    for command in (("freq", "--out", tmp_path / "freq"), ("check-dataset",)):
        code, err = run(capsys, command[0], "--dataset", "folder", "--root", root, *command[1:],
                        *(("--split", "test") if command[0] == "freq" else ()))
        assert code in (1, 2) and "classes.txt" in err and "UTF-8" in err


def out_is_a_file(tmp_path, capsys, monkeypatch):
    root = folder_set(tmp_path / "set")
    weights = tiny_weights(tmp_path / "w.safetensors", root)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    for args in (("freq", "--dataset", "folder", "--root", root, "--split", "test"),
                 ("eval", "--checkpoint", weights, "--dataset", "folder", "--root", root, "--split", "test",
                  "--bootstrap", "0", "--device", "cpu"),
                 ("parse", "--checkpoint", weights, root / "test" / "images")):
        code, err = run(capsys, *args, "--out", blocker)
        assert code == 2 and str(blocker) in error_line(err), err
    code, err = run(capsys, "synth", "--format", "folder", "--num-images", "4", "--size", "32", "--workers", "1",
                    "--out", blocker / "sub")
    assert code == 2 and str(blocker) in error_line(err)
    code, err = run(capsys, "train", "--config", "synth_tiny", "data.dataset=folder", f"data.root={root}",
                    "data.synthetic=null", "data.resolution=16", "--out", blocker)
    assert code == 2 and str(blocker) in error_line(err)


def out_not_writable(tmp_path, capsys, monkeypatch):
    import lt_faceparse.atomic as atomic

    def refuse(*args, dir=None, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(dir))

    root = folder_set(tmp_path / "set")
    monkeypatch.setattr(atomic.tempfile, "mkdtemp", refuse)
    code, err = run(capsys, "freq", "--dataset", "folder", "--root", root, "--split", "test", "--out", tmp_path / "o")
    assert code == 2 and error_line(err).endswith(f"{tmp_path / 'o'}: permission denied")


def freq_full_disk_keeps_the_old_report(tmp_path, capsys, monkeypatch):
    import matplotlib.figure

    root = folder_set(tmp_path / "set")
    out = tmp_path / "freq"
    assert run(capsys, "freq", "--dataset", "folder", "--root", root, "--split", "test", "--out", out)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def full(self, fname, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full)
    code, err = run(capsys, "freq", "--dataset", "folder", "--root", root, "--split", "test", "--rare-below", "0.5",
                    "--out", out)
    assert code == 2 and "no space left on device" in error_line(err)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # not the new CSV beside the old figures


def pretrained_garbage(tmp_path, capsys, monkeypatch):
    import torch
    from safetensors.torch import save_file

    from lt_faceparse.errors import DataError
    from lt_faceparse.models import build_model

    garbage = tmp_path / "backbone.safetensors"
    garbage.write_bytes(b"\x00" * 64)
    wrong = tmp_path / "wrong.safetensors"
    save_file({"features.0.0.weight": torch.zeros(3)}, str(wrong))
    cut = tmp_path / "cut.pth"
    torch.save({"x": torch.zeros(99)}, cut)
    for path in (garbage, wrong, truncate(cut)):
        with pytest.raises(DataError) as caught:
            build_model("segface", backbone="mobilenet", num_classes=4, pretrained=str(path))
        assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def check_dataset_empty_split(tmp_path, capsys, monkeypatch):
    root = folder_set(tmp_path / "set")
    for p in (root / "test" / "images").iterdir():
        p.unlink()
    code, text = run(capsys, "check-dataset", "--dataset", "folder", "--root", root)
    assert code == 1 and f"{root / 'test' / 'images'}: split folder holds no images" in text


def labels_without_image_warn(tmp_path, capsys, monkeypatch):
    from lt_faceparse.data import build_dataset

    root = folder_set(tmp_path / "set")
    write_image(root / "train" / "labels" / "orphan.png", np.zeros((SIZE, SIZE), np.uint8))
    with pytest.warns(UserWarning, match=r"1 label file\(s\) have no image.*orphan.png"):
        assert len(build_dataset("folder", root, "train", resolution=None)) == 4


def mapping_cut_short_warns(tmp_path, capsys, monkeypatch):
    from bad_input_celeba import celeba_tree

    from lt_faceparse.data import build_dataset

    root = celeba_tree(tmp_path / "celeba", 20)
    mapping = root / "CelebA-HQ-to-CelebA-mapping.txt"
    mapping.write_text("".join(mapping.read_text().splitlines(keepends=True)[:5]))
    with pytest.warns(UserWarning, match="lists 4 of the 20 images.*other 16"):
        assert len(build_dataset("celebamask-hq", root, "all", resolution=None, cache_dir=False)) == 4


def parse_goes_on_past_a_bad_image(tmp_path, capsys, monkeypatch):
    root = folder_set(tmp_path / "set")
    weights = tiny_weights(tmp_path / "w.safetensors", root)
    truncate(sorted((root / "test" / "images").iterdir())[0], 0.3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, err = run(capsys, "parse", "--checkpoint", weights, root / "test" / "images", "--out", tmp_path / "p")
    assert code == 2 and "1 of 4 image(s) could not be parsed" in error_line(err)
    assert [str(w.message).count("test_00.png") for w in caught] == [1]
    assert sorted(p.name for p in (tmp_path / "p").glob("*_label.png")) == [f"test_0{i}_label.png" for i in (1, 2, 3)]
    code, err = run(capsys, "parse", "--strict", "--checkpoint", weights, root / "test" / "images",
                    "--out", tmp_path / "strict")
    assert code == 2 and "test_00.png: cannot read image" in error_line(err) and not (tmp_path / "strict").exists()


def unicode_file_names(tmp_path, capsys, monkeypatch):
    root = folder_set(tmp_path / "jeu été", names=["visage é", "顔", "лицо", "face 😀"])
    weights = tiny_weights(tmp_path / "w.safetensors", root)
    assert run(capsys, "freq", "--dataset", "folder", "--root", root, "--split", "test", "--out", tmp_path / "f")[0] == 0
    assert run(capsys, "eval", "--checkpoint", weights, "--dataset", "folder", "--root", root, "--split", "test",
               "--bootstrap", "0", "--device", "cpu", "--out", tmp_path / "résultat")[0] == 0
    assert run(capsys, "parse", "--checkpoint", weights, root / "test" / "images", "--out", tmp_path / "p")[0] == 0
    assert (tmp_path / "p" / "顔_label.png").is_file()


def sixteen_bit_labels(tmp_path, capsys, monkeypatch):
    from PIL import Image

    from lt_faceparse.data import build_dataset

    root = folder_set(tmp_path / "set")
    label_path = sorted((root / "test" / "labels").iterdir())[0]
    ids = np.asarray(Image.open(label_path)).astype(np.uint16)
    Image.fromarray(ids).save(label_path)  # mode I;16
    assert Image.open(label_path).mode.startswith("I")
    np.testing.assert_array_equal(build_dataset("folder", root, "test", resolution=None).read_label(0), ids)
    Image.fromarray(np.full((SIZE, SIZE), 300, np.uint16)).save(label_path)
    code, err = run(capsys, "freq", "--dataset", "folder", "--root", root, "--split", "test", "--out", tmp_path / "f")
    assert code == 2 and "do not fit 0..255" in error_line(err)

