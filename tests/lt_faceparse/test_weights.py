import json

import pytest
import torch
import torch.nn as nn

from lt_faceparse.atomic import atomic_path, atomic_write_json
from lt_faceparse.errors import DataError
from lt_faceparse.models import build_model, list_models, register_model
from lt_faceparse.weights import load_model, read_metadata, save_model


class _Toy(nn.Module):
    def __init__(self, num_classes: int = 3, width: int = 4):
        super().__init__()
        self.build_kwargs = {"num_classes": num_classes, "width": width}
        self.conv = nn.Conv2d(3, width, 1)
        self.head = nn.Conv2d(width, num_classes, 1)

    def forward(self, x):
        return self.head(self.conv(x))


register_model("_toy_for_weight_tests", _Toy, overwrite=True)


def test_registry_lists_lazy_models_without_importing_them():
    assert {"segface", "bisenet", "fcn", "segformer", "tiny"} <= set(list_models())
    with pytest.raises(KeyError, match="unknown model"):
        build_model("no-such-model")


def test_save_load_round_trip_reproduces_outputs(tmp_path):
    torch.manual_seed(0)
    model = build_model("_toy_for_weight_tests", num_classes=5, width=6)
    meta = {"model": "_toy_for_weight_tests", "model_kwargs": model.build_kwargs,
            "taxonomy": "custom", "resolution": 32, "source": "test"}
    path = save_model(model, tmp_path, meta)
    assert path.name == "model.safetensors"
    loaded, got = load_model(tmp_path)
    assert got["resolution"] == 32 and got["model_kwargs"] == {"num_classes": 5, "width": 6}
    assert not loaded.training
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert read_metadata(path)["source"] == "test"


def test_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(DataError, match="bad.safetensors"):
        read_metadata(bad)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        load_model(tmp_path / "missing.safetensors")
    model = _Toy()
    path = save_model(model, tmp_path / "w.safetensors",
                      {"model": "_toy_for_weight_tests", "model_kwargs": {"num_classes": 4},
                       "taxonomy": "x", "resolution": 8})
    with pytest.raises(DataError, match="do not fit"):
        load_model(path)  # metadata says 4 classes, tensors hold 3


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_load_inside_inference_mode_gives_ordinary_parameters(tmp_path):
    model = _Toy()
    save_model(model, tmp_path, {"model": "_toy_for_weight_tests", "model_kwargs": model.build_kwargs,
                                 "taxonomy": "x", "resolution": 8})
    with torch.inference_mode():
        loaded, _ = load_model(tmp_path)
    assert not any(p.is_inference() for p in loaded.parameters())


def test_read_json_names_the_file_and_the_problem(tmp_path):
    from lt_faceparse.atomic import read_json

    good = atomic_write_json(tmp_path / "row.json", {"kind": "sweep", "name": "x"})
    assert read_json(good, "sweep row", kind="sweep", required=("name",)) == {"kind": "sweep", "name": "x"}
    with pytest.raises(DataError, match=r"row.json: sweep row lacks \['fps'\]"):
        read_json(good, "sweep row", kind="sweep", required=("name", "fps"))
    with pytest.raises(DataError, match='row.json: not a speed record \\(missing "kind": "speed"\\)'):
        read_json(good, "speed record", kind="speed")
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(DataError, match="broken.json: not a readable result record"):
        read_json(tmp_path / "broken.json", "result record")
    with pytest.raises(DataError, match="absent.json: result record not found"):
        read_json(tmp_path / "absent.json", "result record")
