"""FaceParser and the `parse` / `export-onnx` subcommands on generated images."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from lt_faceparse.cli import main
from lt_faceparse.data.transforms import normalize_image, resize_image
from lt_faceparse.taxonomy import get_taxonomy
from lt_faceparse.weights import save_model
from lt_faceparse.inference.parser import FaceParser
from segface import SegFace, load_checkpoint

RES = 64


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    model = SegFace("mobilenet", num_classes=19).eval()
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    save_model(model, path, {"model": "segface", "model_kwargs": model.build_kwargs,
                             "taxonomy": "celebamask-hq", "resolution": RES, "source": "test"})
    return path


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("imgs")
    arrays = {"a.png": rng.integers(0, 256, (50, 70, 3), dtype=np.uint8),
              "b.jpg": rng.integers(0, 256, (100, 80, 3), dtype=np.uint8)}
    for name, arr in arrays.items():
        Image.fromarray(arr).save(folder / name)
    return folder, {n: np.asarray(Image.open(folder / n).convert("RGB")) for n in arrays}


def test_parse_cli_writes_labels_overlays_and_probs(checkpoint, images, tmp_path):
    folder, arrays = images
    out = tmp_path / "out"
    assert main(["parse", "--checkpoint", str(checkpoint), str(folder), "--out", str(out), "--probs"]) == 0
    model = load_checkpoint(checkpoint)
    tax = get_taxonomy("celebamask-hq")
    for name, arr in arrays.items():
        stem = name.split(".")[0]
        label = np.asarray(Image.open(out / f"{stem}_label.png"))
        assert label.shape == arr.shape[:2]
        # reference: resize to the model input, logits back to the original size (bilinear), argmax
        x = normalize_image(resize_image(arr, (RES, RES)))[None]
        with torch.no_grad():
            logits = F.interpolate(model(x), size=arr.shape[:2], mode="bilinear", align_corners=False)
        assert np.array_equal(label, logits[0].argmax(0).numpy())
        overlay = np.asarray(Image.open(out / f"{stem}_overlay.png"))
        assert overlay.shape == arr.shape
        fg = label != 0
        expected = np.round(0.5 * arr[fg].astype(np.float32) + 0.5 * tax.palette[label[fg]]).astype(np.uint8)
        assert np.array_equal(overlay[fg], expected) and np.array_equal(overlay[~fg], arr[~fg])
        probs = sorted((out / f"{stem}_probs").iterdir())
        assert len(probs) == 19 and probs[2].name == "02_skin.png"
        total = sum(np.asarray(Image.open(p)).astype(np.int64) for p in probs)
        assert np.abs(total - 255).max() <= 10  # probabilities sum to one (up to per-map rounding)


@pytest.mark.slow
def test_batched_predict_equals_one_by_one(checkpoint, images):
    _, arrays = images
    parser = FaceParser.from_checkpoint(checkpoint, batch_size=2)
    both = parser.predict(list(arrays.values()))
    single = [parser.predict([a])[0] for a in arrays.values()]
    for x, y in zip(both, single):
        assert np.array_equal(x.label, y.label)


def test_unreadable_image_is_named(checkpoint, tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    assert main(["parse", "--checkpoint", str(checkpoint), str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "broken.png" in err and "cannot read image" in err


@pytest.mark.slow
def test_export_onnx_matches_torch(checkpoint, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    path = tmp_path / "segface.onnx"
    assert main(["export-onnx", "--checkpoint", str(checkpoint), "--out", str(path)]) == 0
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.randn(2, 3, RES, RES)  # batch 2 although exported with batch 1: the batch axis is dynamic
    (onnx_logits,) = session.run(None, {"images": x.numpy()})
    with torch.inference_mode():
        expected = load_checkpoint(checkpoint)(x).numpy()
    assert onnx_logits.shape == (2, 19, RES, RES)
    assert np.abs(onnx_logits - expected).max() < 1e-4


@pytest.mark.slow
def test_tanh_warp_model_needs_and_uses_landmarks(images, tmp_path, capsys):
    import json

    from lt_faceparse.data.warp import TanhWarp

    torch.manual_seed(1)
    model = SegFace("mobilenet", num_classes=11).eval()
    ckpt = save_model(model, tmp_path / "lapa.safetensors",
                      {"model": "segface", "model_kwargs": model.build_kwargs, "taxonomy": "lapa",
                       "resolution": RES, "warp": "tanh"})
    folder, arrays = images
    out = tmp_path / "out"
    assert main(["parse", "--checkpoint", str(ckpt), str(folder), "--out", str(out)]) == 2
    assert "landmarks" in capsys.readouterr().err
    points = {"a.png": [[25, 20], [45, 20], [35, 28], [28, 38], [42, 38]],
              "b.jpg": [[30, 40], [50, 40], [40, 55], [32, 70], [48, 70]]}
    lm_file = tmp_path / "lm.json"
    lm_file.write_text(json.dumps(points))
    assert main(["parse", "--checkpoint", str(ckpt), str(folder), "--out", str(out), "--landmarks", str(lm_file)]) == 0
    warped = TanhWarp(model, out_size=RES).eval()
    for name, arr in arrays.items():
        label = np.asarray(Image.open(out / f"{name.split('.')[0]}_label.png"))
        with torch.no_grad():
            logits = warped(normalize_image(arr)[None], torch.tensor([points[name]], dtype=torch.float32))
        assert label.shape == arr.shape[:2]
        assert np.array_equal(label, logits[0].argmax(0).numpy())


def test_compile_option_reaches_the_parser(checkpoint, monkeypatch):
    from lt_faceparse.engine import compile as compile_module

    asked = []
    monkeypatch.setattr(compile_module.torch, "compile", lambda module, mode=None: asked.append(mode) or module)
    assert not FaceParser.from_checkpoint(checkpoint).net.compiled  # eager by default
    parser = FaceParser.from_checkpoint(checkpoint, compile=True)
    assert parser.net.compiled and asked == ["default"]  # Inductor's default mode on the CPU
    parser = FaceParser.from_checkpoint(checkpoint, compile="max-autotune-no-cudagraphs")
    assert asked[-1] == "max-autotune-no-cudagraphs"
    with pytest.raises(ValueError, match="compile must be one of"):
        FaceParser.from_checkpoint(checkpoint, compile="fastest")


def test_parse_cli_compile_flag(checkpoint, images, tmp_path, monkeypatch):
    import lt_faceparse.inference.parser as parser_module

    seen = []
    real = parser_module.FaceParser.from_checkpoint
    monkeypatch.setattr(parser_module.FaceParser, "from_checkpoint",
                        classmethod(lambda cls, *a, **kw: seen.append(kw["compile"]) or real(*a, **{**kw, "compile": False})))
    folder, _ = images
    assert main(["parse", "--checkpoint", str(checkpoint), str(folder), "--out", str(tmp_path / "a"), "--compile"]) == 0
    assert main(["parse", "--checkpoint", str(checkpoint), str(folder), "--out", str(tmp_path / "b"),
                 "--compile", "reduce-overhead"]) == 0
    assert main(["parse", "--checkpoint", str(checkpoint), str(folder), "--out", str(tmp_path / "c")]) == 0
    assert seen == [True, "reduce-overhead", False]

