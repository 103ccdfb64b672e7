import json

import pytest
import torch
import torch.nn as nn

from lt_faceparse.atomic import atomic_path, atomic_write_json
from lt_faceparse.custom_taxonomy import taxonomy_from_names
from lt_faceparse.errors import DataError
from lt_faceparse.models import build_model, list_models, register_model
from lt_faceparse.taxonomy import LAPA, get_taxonomy
from lt_faceparse.weights import embed_taxonomy, load_model, read_metadata, save_model, taxonomy_of

USER_TAXONOMY = taxonomy_from_names("weights-test-five", ["background", "skin", "hair", "l_eye", "r_eye"],
                                    display_names=[None, "Skin", "Hair", "Left eye", "Right eye"])


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
            "taxonomy": USER_TAXONOMY, "resolution": 32, "source": "test"}
    path = save_model(model, tmp_path, meta)
    assert path.name == "model.safetensors"
    loaded, got = load_model(tmp_path)
    assert got["resolution"] == 32 and got["model_kwargs"] == {"num_classes": 5, "width": 6}
    assert not loaded.training
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert read_metadata(path)["source"] == "test"
    assert got["taxonomy"] == USER_TAXONOMY.to_dict()  # the whole taxonomy travels with the weights


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
                       "taxonomy": "celebamask-hq", "resolution": 8})
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
                                 "taxonomy": "celebamask-hq", "resolution": 8})
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


def _toy_file(path, taxonomy):
    model = _Toy(num_classes=len(taxonomy["classes"]) if isinstance(taxonomy, dict) else 11)
    return save_model(model, path, {"model": "_toy_for_weight_tests", "model_kwargs": model.build_kwargs,
                                    "taxonomy": taxonomy, "resolution": 8})


def test_taxonomy_of_rebuilds_and_registers_a_user_taxonomy(tmp_path):
    spec = taxonomy_from_names("weights-test-own", ["background", "face", "mouth"],
                               display_names=[None, "Face", "Mouth (whole)"]).to_dict()
    path = _toy_file(tmp_path / "own.safetensors", spec)
    with pytest.raises(KeyError):
        get_taxonomy("weights-test-own")  # nothing registered it yet
    tax = taxonomy_of(read_metadata(path), path)
    assert tax.names == ["background", "face", "mouth"] and tax.display_names == ["background", "Face", "Mouth (whole)"]
    assert tax.palette.tolist() == [c["color"] for c in spec["classes"]]
    assert get_taxonomy("weights-test-own") is tax  # downstream lookups by name work in this process
    assert taxonomy_of(read_metadata(path), path) is tax  # reading it again is fine


def test_taxonomy_of_checks_builtin_names_and_old_string_form(tmp_path):
    builtin = _toy_file(tmp_path / "lapa.safetensors", "lapa")
    assert read_metadata(builtin)["taxonomy"] == LAPA.to_dict()
    assert taxonomy_of(read_metadata(builtin), builtin) is LAPA
    forged = LAPA.to_dict()
    forged["classes"][1]["display"] = "Face"
    meta = {**read_metadata(builtin), "taxonomy": forged}
    with pytest.raises(DataError, match=r"lapa.safetensors: stores a taxonomy named 'lapa' that differs from the "
                                        r"built-in one: display names"):
        taxonomy_of(meta, builtin)
    # files written before weight files held their taxonomy: a bare name
    assert taxonomy_of({"taxonomy": "helen"}, "old.safetensors") is get_taxonomy("helen")
    with pytest.raises(DataError, match=r"old.safetensors: names taxonomy 'folder:gone'.*predates self-contained"):
        taxonomy_of({"taxonomy": "folder:gone"}, "old.safetensors")


def test_conflicting_definitions_of_one_name_are_refused(tmp_path):
    a = taxonomy_from_names("weights-test-clash", ["background", "skin", "hair"]).to_dict()
    b = taxonomy_from_names("weights-test-clash", ["background", "hair", "skin"]).to_dict()
    in_use = taxonomy_of({"taxonomy": a}, "a.safetensors")
    with pytest.raises(DataError, match=r"b.safetensors: defines taxonomy 'weights-test-clash' differently.*"
                                        r"class names \['background', 'hair', 'skin'\]"):
        taxonomy_of({"taxonomy": b}, "b.safetensors")
    # only the display names differ (classes.txt edited later): the one in use is kept, with a warning
    relabelled = taxonomy_from_names("weights-test-clash", ["background", "skin", "hair"],
                                     display_names=[None, "Skin", "Hair"]).to_dict()
    with pytest.warns(UserWarning, match=r"c.safetensors: taxonomy 'weights-test-clash' differs .* only in how "
                                         r"classes are shown \(display names"):
        assert taxonomy_of({"taxonomy": relabelled}, "c.safetensors") is in_use


def test_save_model_refuses_an_unknown_name_and_embed_upgrades_an_old_file(tmp_path):
    with pytest.raises(ValueError, match="taxonomy 'nowhere' is not registered"):
        _toy_file(tmp_path / "x.safetensors", "nowhere")
    # an old file holds the bare name of a taxonomy that is not registered in this process
    from safetensors.torch import load_file, save_file

    old_taxonomy = taxonomy_from_names("weights-test-old", ["background", "skin", "nose"])
    path = _toy_file(tmp_path / "old.safetensors", old_taxonomy.to_dict())
    meta = read_metadata(path)
    state = load_file(str(path))
    save_file(state, str(path), metadata={"lt_faceparse": json.dumps({**meta, "taxonomy": old_taxonomy.name})})
    with pytest.raises(DataError, match="old.safetensors: names taxonomy 'weights-test-old'.*predates"):
        taxonomy_of(read_metadata(path), path)
    embed_taxonomy(path, old_taxonomy)
    assert read_metadata(path)["taxonomy"] == old_taxonomy.to_dict()
    assert taxonomy_of(read_metadata(path), path).names == ["background", "skin", "nose"]
    assert all(torch.equal(load_file(str(path))[k], v) for k, v in state.items())  # weights untouched
    with pytest.raises(DataError, match="names taxonomy 'weights-test-old', not 'lapa'"):
        embed_taxonomy(path, "lapa")
