import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from lt_faceparse.custom_taxonomy import taxonomy_from_names
from lt_faceparse.errors import DataError
from lt_faceparse.records import (PROVENANCE_KEYS, SCHEMA_VERSION, Provenance, build_record, load_record,
                                  make_provenance, migrate_record_dict, save_record)

REPO = Path(__file__).resolve().parents[3]
# every record of the committed benchmark: the settings' (results/) and the rarity stage's (rarity/)
COMMITTED = sorted([*(REPO / "reports" / "results").glob("*/*/record.json"),
                    *(REPO / "reports" / "rarity").glob("**/record.json")])
V1_FIXTURE = Path(__file__).parent / "data" / "record_v1.json"  # a committed val record, ci and side file cut


def test_every_key_is_declared_with_a_type_and_a_docstring():
    source = REPO / "lt_faceparse" / "records" / "provenance.py"
    text = source.read_text()
    fields = [f.name for f in dataclasses.fields(Provenance) if not f.name.startswith("_")]
    assert set(PROVENANCE_KEYS) <= set(fields)
    for name in fields:  # "name: type = default" followed by its docstring line
        line = next(ln for ln in text.splitlines() if ln.startswith(f"    {name}: "))
        after = text.split(line + "\n", 1)[1].lstrip()
        assert after.startswith('"""'), name


def test_round_trip_keeps_keys_order_and_nulls_as_written():
    given = {"model": "tiny", "run": "r1", "epochs": None, "longtail": {"label": "plain", "loss": "plain"},
             "data_root": "/data", "resolution": 64}
    prov = make_provenance(given, "celebamask-hq")
    out = prov.to_dict()
    assert list(out)[:len(PROVENANCE_KEYS)] == list(PROVENANCE_KEYS)
    assert list(out)[len(PROVENANCE_KEYS):] == ["run", "epochs", "longtail", "data_root"]
    assert out["epochs"] is None and "posthoc" not in out  # a null the writer gave stays, an unset key is left out
    assert out["taxonomy"] == "celebamask-hq" and out["reported"] is False and out["created"]
    back = Provenance.from_dict(json.loads(json.dumps(out)))
    assert back == prov and back.to_dict() == out and list(back.to_dict()) == list(out)
    assert back.resolution == 64 and back.longtail["label"] == "plain"
    counted = make_provenance({"num_params": np.int64(5), "fps": np.float32(2.5)}, "celebamask-hq")
    assert type(counted.num_params) is int and counted.fps == 2.5  # numpy scalars stored as JSON stores them
    moved = back.replace(run="r2", remedy="focal")
    assert moved.run == "r2" and list(moved.to_dict())[-1] == "remedy" and back.run == "r1"


def test_unknown_key_and_wrong_type_are_one_line_errors_naming_the_file(tmp_path):
    path = save_record(build_record([[3, 1], [0, 4]], _two_classes(), {"model": "m"}, num_images=1), tmp_path / "r")
    data = json.loads(path.read_text())
    for change, message in [({"modle": "m"}, r"provenance has unknown keys \['modle'\]"),
                            ({"resolution": "64"}, r"provenance.resolution = '64' is not an integer or null"),
                            ({"reported": "no"}, r"provenance.reported = 'no' is not true or false"),
                            ({"longtail": {"loss": "focal"}}, "provenance.longtail lacks the label")]:
        path.write_text(json.dumps({**data, "provenance": {**data["provenance"], **change}}))
        with pytest.raises(DataError, match=message) as err:
            load_record(path)
        assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)
    with pytest.raises(DataError, match="unknown keys"):
        build_record([[3, 1], [0, 4]], _two_classes(), {"modle": "m"}, num_images=1)


def test_the_cli_names_the_file_of_an_unknown_key_and_exits_2(tmp_path, capsys):
    from lt_faceparse.cli import main

    good = save_record(build_record([[3, 1], [0, 4]], _two_classes(), {"model": "m"}, num_images=1), tmp_path / "a")
    data = json.loads(good.read_text())
    bad = tmp_path / "b.json"
    bad.write_text(json.dumps({**data, "provenance": {**data["provenance"], "seed": 3}}))
    assert main(["compare", str(good), str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert str(bad) in err and "provenance has unknown keys ['seed']" in err and "Traceback" not in err


def test_the_schema_version_is_written(tmp_path):
    assert SCHEMA_VERSION == 2
    path = save_record(build_record([[3, 1], [0, 4]], _two_classes(), {"model": "m"}, num_images=1), tmp_path / "r")
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION


def test_a_version_1_record_migrates_on_load_with_its_content_unchanged(tmp_path):
    original = json.loads(V1_FIXTURE.read_text())
    assert original["schema_version"] == 1
    record = load_record(V1_FIXTURE)
    assert record.schema_version == SCHEMA_VERSION
    assert (record.provenance.model, record.provenance.resolution, record.provenance.run) == (
        "segface", 32, "segface-timm_mobilenetv3_large_100-r32")
    assert record.provenance.longtail["label"] == "plain" and record.provenance.posthoc is None
    saved = json.loads(save_record(record, tmp_path / "again").read_text())
    assert saved == {**original, "schema_version": SCHEMA_VERSION}
    assert list(saved["provenance"]) == list(original["provenance"])
    # an object without a version is read as version 1, the version every record before 2 carries
    del original["schema_version"]
    assert migrate_record_dict(original, V1_FIXTURE)["schema_version"] == SCHEMA_VERSION
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**original, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(DataError, match=f"schema_version 3; this library reads versions 1 to {SCHEMA_VERSION}"):
        load_record(newer)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: "/".join(p.parent.relative_to(REPO / "reports").parts))
def test_every_committed_record_loads_and_saves_back_unchanged(path, tmp_path):
    original = json.loads(path.read_text())
    record = load_record(path)
    assert record.provenance.to_dict() == original["provenance"]
    assert record.per_image.num_images == record.num_images  # side file found and checked
    saved = json.loads(save_record(record, tmp_path / "copy").read_text())
    assert saved == {**original, "schema_version": SCHEMA_VERSION}


def test_the_committed_records_are_all_found():
    # 7 settings (plain SegFace, copy-paste, cRT, LWS, post-hoc LA, flip TTA, BiSeNet), the control (uncorrected
    # and at 2 label-shift τ) and 4 τ-norm scorings, each on val and test
    assert len(COMMITTED) == 2 * 7 + 2 * 3 + 2 * 4


def _two_classes():
    return taxonomy_from_names("two", ["background", "face"])
