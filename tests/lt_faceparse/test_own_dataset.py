"""A user's own folder dataset end to end: its own class list and display names, weight files that
carry their taxonomy, eval with CIs, compare, and a report from the records alone.

The dataset: SynthFace-LT written in the folder layout, relabelled to 6 classes (background, skin,
hair, eyes, nose, mouth) with a ``classes.txt`` that names its own display names.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lt_faceparse.cli import main

CLASSES_TXT = "background\nskin Skin\nhair Hair\neyes Eyes\nnose Nose\nmouth Mouth (whole)\n"
DISPLAY = ["background", "Skin", "Hair", "Eyes", "Nose", "Mouth (whole)"]
# CelebAMask-HQ name -> id in the 6-class list (brows count as skin; neck, ears, cloth and accessories
# as background)
SIX = {"skin": 1, "l_brow": 1, "r_brow": 1, "hair": 2, "l_eye": 3, "r_eye": 3, "nose": 4, "mouth": 5,
       "u_lip": 5, "l_lip": 5}


def six_class_folder(out: Path, *, num_images: int = 30, size: int = 48, seed: int = 0) -> Path:
    """A folder dataset ``out`` with train/val/test splits and the 6-class ``classes.txt``."""
    from lt_faceparse.data.synthetic import generate_synthface

    raw = generate_synthface(out.parent / f"{out.name}-raw", fmt="folder", num_images=num_images, size=size,
                             seed=seed, num_workers=1)
    names = (raw / "classes.txt").read_text().split()
    lut = np.zeros(256, np.uint8)
    lut[255] = 255
    for i, name in enumerate(names):
        lut[i] = SIX.get(name, 0)
    for split in ("train", "val", "test"):
        shutil.copytree(raw / split / "images", out / split / "images")
        (out / split / "labels").mkdir(parents=True)
        for path in sorted((raw / split / "labels").glob("*.png")):
            Image.fromarray(lut[np.asarray(Image.open(path))]).save(out / split / "labels" / path.name)
    (out / "classes.txt").write_text(CLASSES_TXT)
    shutil.rmtree(raw)
    return out


def _run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``lt-faceparse ARGS`` in a fresh Python process (nothing registered, no dataset opened)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]),
                                                        os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "lt_faceparse", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_weight_file_alone_parses_scores_and_exports_in_a_fresh_process(tmp_path):
    """Acceptance: train on a folder dataset with its own classes, delete the dataset, then parse,
    eval (on a separately kept labelled test folder) and export-onnx from the weight file alone."""
    import torch

    from lt_faceparse.engine.config import load_config
    from lt_faceparse.engine.train import train

    torch.set_num_threads(1)
    data = six_class_folder(tmp_path / "myfaces")
    holdout = tmp_path / "holdout"  # what a user keeps for testing: labelled images, no classes.txt
    shutil.copytree(data / "test", holdout / "test")
    photos = tmp_path / "photos"
    shutil.copytree(data / "test" / "images", photos)
    config = load_config("synth_tiny", [f"data.root={data}", "data.dataset=folder", "data.synthetic=null",
                                        "data.resolution=32", "optim.epochs=1", "optim.milestones=[1]",
                                        "data.val_split=null", f"out={tmp_path / 'run'}"])
    run = train(config)
    shutil.rmtree(data)

    weights = run / "final.safetensors"
    parsed = _run_cli("parse", "--checkpoint", str(weights), str(photos), "--out", str(tmp_path / "parsed"),
                      cwd=tmp_path)
    assert parsed.returncode == 0, parsed.stderr
    first = sorted(photos.iterdir())[0].stem
    label = np.asarray(Image.open(tmp_path / "parsed" / f"{first}_label.png"))
    assert label.shape == (48, 48) and label.max() <= 5  # ids of the 6-class taxonomy at the photo's size

    scored = _run_cli("eval", "--checkpoint", str(weights), "--dataset", "folder", "--root", str(holdout),
                      "--split", "test", "--bootstrap", "200", "--out", str(tmp_path / "scored"), cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr
    assert "merge n/a" in scored.stdout and "95% CI" in scored.stdout
    record = json.loads((tmp_path / "scored" / "record.json").read_text())
    assert record["taxonomy"] == "folder:myfaces" and record["num_images"] == len(list(photos.iterdir()))
    assert [c["display"] for c in record["taxonomy_definition"]["classes"]] == DISPLAY
    assert record["ci"]["n_resamples"] == 200 and record["provenance"]["data_format"] == "folder"
    assert record["provenance"]["data_root"] == str(holdout.resolve())

    exported = _run_cli("export-onnx", "--checkpoint", str(weights), "--out", str(tmp_path / "m.onnx"), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    import onnx

    props = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    stored = json.loads(props["lt_faceparse"])
    assert stored["resolution"] == 32 and [c["display"] for c in stored["taxonomy"]["classes"]] == DISPLAY
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"images": np.zeros((2, 3, 32, 32), np.float32)})
    assert logits.shape == (2, 6, 32, 32)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """The 6-class dataset, its training-split frequencies, and two models' test records from
    ``eval``: an untrained SegFace (MobileNetV3, 32 px) and the tiny parser."""
    import torch

    from lt_faceparse.analysis.frequency import frequency_report
    from lt_faceparse.engine.evaluate import evaluate_checkpoint
    from lt_faceparse.models import build_model
    from lt_faceparse.taxonomy import get_taxonomy
    from lt_faceparse.weights import save_model

    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("own")
    data = six_class_folder(base / "myfaces", num_images=20, size=32)
    frequency_report("folder", data, "train", base / "freq")
    taxonomy = get_taxonomy("folder:myfaces")
    torch.manual_seed(0)
    for name, kwargs in (("segface", {"backbone": "mobilenet", "num_classes": 6, "pretrained": False}),
                         ("tiny", {"num_classes": 6, "width": 4})):
        model = build_model(name, **kwargs).eval()
        save_model(model, base / "weights" / f"{name}.safetensors",
                   {"model": name, "model_kwargs": model.build_kwargs, "taxonomy": taxonomy, "resolution": 32})
        evaluate_checkpoint(base / "weights" / f"{name}.safetensors", "folder", data, "test",
                            out_dir=base / "results" / name, device="cpu", n_resamples=100)
    return base, data


def test_eval_records_carry_bootstrap_intervals_by_default(scored, tmp_path):
    base, data = scored
    from lt_faceparse.records import load_record

    record = load_record(base / "results" / "tiny")
    assert record.ci["n_resamples"] == 100 and record.ci["method"].startswith("percentile bootstrap over images")
    low, high = record.ci["mean_f1"]["lower"], record.ci["mean_f1"]["upper"]
    assert low <= record.mean_f1 <= high
    # the CLI's default is 1000 resamples; --bootstrap 0 leaves them out
    assert main(["eval", "--checkpoint", str(base / "weights" / "tiny.safetensors"), "--dataset", "folder",
                 "--root", str(data), "--split", "test", "--device", "cpu", "--out", str(tmp_path / "a")]) == 0
    assert load_record(tmp_path / "a").ci["n_resamples"] == 1000
    assert main(["eval", "--checkpoint", str(base / "weights" / "tiny.safetensors"), "--dataset", "folder",
                 "--root", str(data), "--split", "test", "--device", "cpu", "--bootstrap", "0",
                 "--out", str(tmp_path / "b")]) == 0
    assert load_record(tmp_path / "b").ci is None


def test_compare_writes_the_paired_test_and_refuses_incomparable_records(scored, tmp_path, capsys, monkeypatch):
    from lt_faceparse.metrics.bootstrap import paired_bootstrap
    from lt_faceparse.records import load_record, save_record

    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: rich prints the table unwrapped
    base, _ = scored
    a, b = base / "results" / "tiny", base / "results" / "segface"
    assert main(["compare", str(a), str(b), "--bootstrap", "300", "--out", str(tmp_path / "cmp")]) == 0
    shown = capsys.readouterr().out
    assert "Mouth (whole)" in shown and "Δ F1 (B − A)" in shown
    for ext in ("md", "csv", "tex", "json"):
        assert (tmp_path / "cmp" / f"compare.{ext}").is_file()
    result = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    ra, rb = load_record(a), load_record(b)
    test = paired_bootstrap(ra, rb, ra.taxonomy, n_resamples=300)
    rows = {r["class"]: r for r in result["rows"]}
    assert list(rows) == ["Skin", "Hair", "Eyes", "Nose", "Mouth (whole)", "Mean F1"]  # display names, fg only
    for i, display in enumerate(DISPLAY[1:], start=1):
        assert rows[display]["delta"] == pytest.approx(test.delta[i], nan_ok=True)
        assert rows[display]["f1_b"] == pytest.approx(rb.per_class[i]["f1"], nan_ok=True)
    assert rows["Mean F1"]["delta"] == pytest.approx(test.mean_delta)
    csv_lines = (tmp_path / "cmp" / "compare.csv").read_text().splitlines()
    assert csv_lines[0] == "Class,F1 A,F1 B,Δ F1 (B − A),95% CI (Δ),p,p (Holm),Verdict"
    assert csv_lines[-1].startswith(f"Mean F1,{100 * ra.mean_f1:.2f},{100 * rb.mean_f1:.2f},{100 * test.mean_delta:+.2f}")
    md = (tmp_path / "cmp" / "compare.md").read_text()
    assert "B = segface (mobilenet) @32 vs A = tiny @32" in md and "Caution: only 2 images" in md

    other = load_record(b)
    other.provenance = other.provenance.replace(split="val")
    save_record(other, tmp_path / "val_record")
    assert main(["compare", str(a), str(tmp_path / "val_record")]) == 2
    assert "split: segface (mobilenet) @32" in capsys.readouterr().err


@pytest.mark.slow
def test_report_makes_example_figures_from_the_records_alone(scored, tmp_path, capsys):
    """Acceptance: `report --results DIR --freq DIR` finds the images through the records; a moved
    dataset gets a message naming --data-root; the tables show the folder's own display names."""
    base, data = scored
    out = tmp_path / "report"
    assert main(["report", "--results", str(base / "results"), "--freq", str(base / "freq"), "--examples", "2",
                 "--no-reported", "--out", str(out)]) == 0
    figures = out / "figures"
    assert (figures / "qualitative.png").is_file() and (figures / "qualitative.pdf").is_file()
    assert list(figures.glob("token_masks_segface_*.png")) and list(figures.glob("token_attention_segface_*.png"))
    board = (out / "tables" / "leaderboard.md").read_text()
    assert "Mouth (whole)" in board and "I-Mouth" not in board and "| Face |" not in board
    assert "merge n/a" in board and "Warning" not in board and "do not state" not in board
    assert "not produced: qualitative" not in capsys.readouterr().out

    moved = base / "moved"
    data.rename(moved)
    try:
        assert main(["report", "--results", str(base / "results"), "--no-reported", "--out", str(tmp_path / "r2")]) == 0
        said = capsys.readouterr().out
        assert f"the dataset root {data.resolve()} stored in the record" in said and "--data-root" in said
        assert "qualitative" in (tmp_path / "r2" / "README.md").read_text().split("## Not produced")[1]
        assert main(["report", "--results", str(base / "results"), "--no-reported", "--data-root", str(moved),
                     "--out", str(tmp_path / "r3")]) == 0
        assert (tmp_path / "r3" / "figures" / "qualitative.png").is_file()
    finally:
        moved.rename(data)


def test_example_images_are_found_through_the_record(scored, tmp_path):
    from lt_faceparse.errors import DataError
    from lt_faceparse.records import load_record
    from lt_faceparse.reporting.examples import example_dataset_root

    base, data = scored
    record = load_record(base / "results" / "segface")
    assert example_dataset_root(record, None) == (data.resolve(), None)
    record.provenance = record.provenance.replace(data_root=str(tmp_path / "moved-away"))
    root, why_not = example_dataset_root(record, None)
    assert root is None and f"the dataset root {tmp_path / 'moved-away'} stored in the record" in why_not
    assert "pass --data-root DIR" in why_not and str(record.path) in why_not
    assert example_dataset_root(record, str(data)) == (data, None)
    with pytest.raises(DataError, match="--data-root: no such dataset folder"):
        example_dataset_root(record, str(tmp_path / "typo"))
    record.provenance = record.provenance.replace(data_root=None)  # as in records from before data_root
    assert "does not say where its images are" in example_dataset_root(record, None)[1]


def test_classes_txt_columns(tmp_path):
    from lt_faceparse.data.folder import read_class_lines, taxonomy_for_folder
    from lt_faceparse.errors import DataError
    from lt_faceparse.taxonomy import get_taxonomy

    root = tmp_path / "cols"
    root.mkdir()
    (root / "classes.txt").write_text("background\nskin\nmouth Mouth (whole)\nglasses\tEye glasses\taccessory\n\n")
    tax = taxonomy_for_folder(root)
    assert tax.name == "folder:cols" and tax.names == ["background", "skin", "mouth", "glasses"]
    assert tax.display_names == ["background", "skin", "Mouth (whole)", "Eye glasses"]
    assert tax.accessory_ids == [3] and tax.background_ids == [0]
    # a list equal to a built-in one uses it; a differing display column makes it the folder's own
    (root / "classes.txt").write_text("\n".join(get_taxonomy("lapa").names) + "\n")
    assert taxonomy_for_folder(root) is get_taxonomy("lapa")
    (root / "classes.txt").write_text("\n".join(["background", "skin Face", *get_taxonomy("lapa").names[2:]]) + "\n")
    assert taxonomy_for_folder(root).name == "folder:cols"
    for text, problem in [("a\n\nb\n", "line 2 is empty"), ("a\na b\n", r"repeated: \['a'\]"),
                          ("a\tA\tweird\n", "kind 'weird'"), ("a\tA\thead\tx\n", "at most 3")]:
        (root / "classes.txt").write_text(text)
        with pytest.raises(DataError, match=problem):
            read_class_lines(root / "classes.txt")


def test_eval_refuses_a_folder_whose_classes_differ_from_the_model(scored, tmp_path):
    from lt_faceparse.engine.evaluate import evaluate_checkpoint
    from lt_faceparse.errors import DataError

    base, data = scored
    other = tmp_path / "other"
    shutil.copytree(data / "test", other / "test")
    (other / "classes.txt").write_text("background\nskin\nhair\neyes\nnose\nlips\n")
    with pytest.raises(DataError, match=r"other/classes.txt: lists classes .*'lips'.* but taxonomy 'folder:myfaces'"):
        evaluate_checkpoint(base / "weights" / "tiny.safetensors", "folder", other, "test", device="cpu",
                            n_resamples=0)
