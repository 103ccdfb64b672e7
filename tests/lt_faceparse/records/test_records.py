import json
import math

import numpy as np
import pytest
import torch

from lt_faceparse.errors import DataError, IncomparableError
from lt_faceparse.metrics import ConfusionMatrix
from lt_faceparse.records import (PROVENANCE_KEYS, SCHEMA_VERSION, build_record, check_comparable, load_record,
                                  reported_record, save_record)
from lt_faceparse.taxonomy import get_taxonomy

PROV = {"model": "tiny", "dataset": "celebamask-hq", "split": "test", "merge": "segface", "resolution": 64,
        "protocol": "input", "checkpoint_rule": "last epoch"}


def _metric(seed=0, n=6, k=19):
    g = torch.Generator().manual_seed(seed)
    m = ConfusionMatrix(k)
    target = torch.randint(0, k - 1, (n, 16, 16), generator=g)  # class 18 (necklace) absent
    target[:, 0] = 255
    preds = torch.where(torch.rand(n, 16, 16, generator=g) < 0.7, target, torch.randint(0, k - 1, (n, 16, 16),
                                                                                          generator=g))
    preds[target == 255] = 0
    m.update(preds, target, image_ids=torch.arange(n))
    return m


def _record(seed=0, **prov):
    m = _metric(seed)
    bins = {"rare": ["ear_r", "neck_l", "hat"], "common": ["l_ear", "r_ear", "eye_g"],
            "frequent": [n for n in get_taxonomy("celebamask-hq").names
                         if n not in ("ear_r", "neck_l", "hat", "l_ear", "r_ear", "eye_g")]}
    return build_record(m, "celebamask-hq", {**PROV, **prov}, bins=bins, names=[f"{i}.png" for i in range(6)])


def test_build_save_load_round_trip(tmp_path):
    rec = _record()
    assert rec.num_images == 6
    assert rec.undefined_classes == ["neck_l"]
    assert math.isnan(rec.per_class_f1()["neck_l"])
    assert set(PROVENANCE_KEYS) <= set(rec.provenance.to_dict())
    assert rec.provenance.reported is False and rec.provenance.created
    # F1@rare: earring and hat defined, necklace undefined -> mean of the two
    f1 = rec.per_class_f1()
    assert rec.f1_by_bin["rare"] == pytest.approx((f1["ear_r"] + f1["hat"]) / 2)
    path = save_record(rec, tmp_path / "run")
    assert path == tmp_path / "run" / "record.json"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["per_image.npz", "record.json"]
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["per_class"][18]["f1"] is None  # NaN stored as null
    loaded = load_record(path)
    assert loaded.mean_f1 == pytest.approx(rec.mean_f1)
    assert loaded.mean_iou_with_bg == pytest.approx(rec.mean_iou_with_bg)
    assert math.isnan(loaded.per_class[18]["f1"])
    assert loaded.confusion == rec.confusion
    stats = loaded.per_image
    assert stats.names == tuple(f"{i}.png" for i in range(6))
    assert np.array_equal(stats.gt, rec.per_image.gt) and np.array_equal(stats.inter, rec.per_image.inter)
    assert loaded.groups["eyes"]["f1"] == pytest.approx(rec.groups["eyes"]["f1"])


def test_json_path_gets_named_side_file(tmp_path):
    path = save_record(_record(), tmp_path / "bisenet.json")
    assert (tmp_path / "bisenet.per_image.npz").is_file()
    assert load_record(path).per_image.num_images == 6


def test_load_validates_and_names_the_file(tmp_path):
    path = save_record(_record(), tmp_path / "r")
    data = json.loads(path.read_text())

    def write(d):
        path.write_text(json.dumps(d))

    write({**data, "schema_version": 99})
    with pytest.raises(DataError, match=r"record\.json.*schema_version 99"):
        load_record(path)
    bad = json.loads(json.dumps(data))
    bad["per_class"][2]["f1"] = 96.4  # percent instead of a fraction
    write(bad)
    with pytest.raises(DataError, match=r"per_class\[2\] \(skin\): f1 = 96.4"):
        load_record(path)
    write({k: v for k, v in data.items() if k != "mean_f1"})
    with pytest.raises(DataError, match="missing keys"):
        load_record(path)
    bad = json.loads(json.dumps(data))
    bad["confusion"][1][1] += 1
    write(bad)
    with pytest.raises(DataError, match="does not match the per-class counts"):
        load_record(path)
    write(data)
    (tmp_path / "r" / "per_image.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="per_image.npz.*checksum"):
        load_record(path)
    path.write_text("{ not json")
    with pytest.raises(DataError, match="not a readable result record"):
        load_record(path)


def test_check_comparable_refuses_unless_forced():
    a, b, c = _record(), _record(1, protocol="native"), _record(2, merge="zll", split="val")
    assert check_comparable([a, _record(3)]) == []
    with pytest.raises(IncomparableError, match="protocol"):
        check_comparable([a, b])
    mism = check_comparable([a, b, c], force=True)
    assert [(m.index, m.key) for m in mism] == [(1, "protocol"), (2, "split"), (2, "merge")]
    assert mism[0].value == "native" and mism[0].reference == "input"


def test_reported_record(tmp_path):
    f1 = {"Face": 0.967, "Nose": 0.942, "E-Glasses": 0.954, "Necklace": 0.634}
    rec = reported_record("SegFace Swin-B", f1, 0.8896, 0.8155,
                          {"taxonomy": "celebamask-hq", "split": "test", "resolution": 512,
                           "source": "Narayan et al., AAAI 2025, Table 1b"})
    assert rec.reported and rec.provenance.model == "SegFace Swin-B"
    assert rec.per_class_f1()["skin"] == 0.967 and math.isnan(rec.per_class_f1()["hair"])
    assert rec.mean_iou_with_bg == 0.8155 and math.isnan(rec.mean_iou_without_bg)
    assert rec.confusion is None and rec.per_image is None
    path = save_record(rec, tmp_path / "segface.json")
    assert not (tmp_path / "segface.per_image.npz").exists()
    back = load_record(path)
    assert back.reported and back.per_class_f1()["neck_l"] == 0.634 and back.num_images is None
    with pytest.raises(ValueError, match="fraction"):
        reported_record("x", {"Face": 96.7}, 0.88, None, {"taxonomy": "celebamask-hq"})
    with pytest.raises(KeyError, match="no class"):
        reported_record("x", {"Beard": 0.5}, 0.88, None, {"taxonomy": "celebamask-hq"})


def test_bootstrap_ci_attached_and_saved(tmp_path):
    rec = _record().with_bootstrap_ci(n_resamples=100, seed=0)
    lo, hi = rec.ci["per_class"]["skin"]["lower"], rec.ci["per_class"]["skin"]["upper"]
    assert lo <= rec.per_class_f1()["skin"] <= hi
    back = load_record(save_record(rec, tmp_path / "r"))
    assert back.ci["n_resamples"] == 100 and back.ci["per_class"]["neck_l"]["upper"] is None


def test_build_record_rejects_inconsistent_inputs():
    m = _metric()
    with pytest.raises(ValueError, match="do not add up"):
        build_record(_metric(1).compute(), "celebamask-hq", PROV, per_image=m.per_image_stats())
    with pytest.raises(ValueError, match="num_images"):
        build_record(m.compute(), "celebamask-hq", PROV)
    with pytest.raises(ValueError, match="taxonomy"):
        build_record(m, "celebamask-hq", {**PROV, "taxonomy": "lapa"})


def test_with_bins_from_frequency_table():
    from lt_faceparse.analysis.bins import assign_bins
    from lt_faceparse.analysis.frequency import FrequencyTable

    tax = get_taxonomy("celebamask-hq")
    presence = np.linspace(1.0, 0.05, tax.num_classes)
    columns = {"class_id": np.arange(tax.num_classes), "class_name": np.array(tax.names, dtype=object),
               "presence_prob": presence, "bin": np.array(assign_bins(presence), dtype=object)}
    table = FrequencyTable(columns, {"dataset": "celebamask-hq", "split": "train", "merge": "segface",
                                   "num_images": 100, "thresholds": {"rare_below": 0.3, "common_below": 0.9}}, tax)
    rec = _record().with_bins(table)
    assert rec.bins_source["split"] == "train"
    assert rec.bins["frequent"] == tax.names[:2]  # presence 1.0, 0.947; then 0.894 < 0.9
    f1 = rec.per_class_f1()
    fg_frequent = ["neck"]
    assert rec.f1_by_bin["frequent"] == pytest.approx(np.mean([f1[n] for n in fg_frequent]))
    # the copy keeps the per-image stats: the same 6 images, adding up to the record's counts
    assert rec.per_image.names == tuple(f"{i}.png" for i in range(6))
    assert rec.per_image.gt.sum(0).tolist() == [c["gt_pixels"] for c in rec.per_class]


def test_records_hold_their_whole_taxonomy(tmp_path):
    from lt_faceparse.records import record_taxonomy
    from lt_faceparse.custom_taxonomy import taxonomy_from_names

    tax = taxonomy_from_names("records-test-own", ["background", "skin", "mouth"],
                              display_names=[None, "Skin", "Mouth (whole)"], kinds=[None, None, "accessory"])
    rec = build_record(np.diag([4, 3, 2]).astype(np.int64), tax, {**PROV, "merge": None}, num_images=1)
    assert rec.taxonomy_definition == tax.to_dict()
    path = save_record(rec, tmp_path / "own")
    with pytest.raises(KeyError):
        get_taxonomy("records-test-own")  # building and saving register nothing
    loaded = load_record(path)
    assert get_taxonomy("records-test-own") == tax  # loading does: names resolve downstream in this process
    assert record_taxonomy(loaded).display_names == ["background", "Skin", "Mouth (whole)"]
    assert record_taxonomy(loaded).accessory_ids == [2]
    # the definition must describe the record's classes
    data = json.loads(path.read_text())
    data["taxonomy_definition"]["classes"][2]["name"] = "lips"
    (tmp_path / "bad.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"bad.json: invalid result record: taxonomy_definition lists classes "
                                        r"\['background', 'skin', 'lips'\]"):
        load_record(tmp_path / "bad.json")
    # a built-in name with another definition is refused, naming the file
    celeba = json.loads(save_record(_record(), tmp_path / "celeba").read_text())
    celeba["taxonomy_definition"]["classes"][2]["display"] = "Skin"
    (tmp_path / "forged.json").write_text(json.dumps({**celeba, "per_image_file": None, "per_image_sha256": None}))
    with pytest.raises(DataError, match="forged.json: stores a taxonomy named 'celebamask-hq' that differs"):
        load_record(tmp_path / "forged.json")


def test_records_without_a_definition_still_load(tmp_path):
    path = save_record(_record(), tmp_path / "old")
    data = json.loads(path.read_text())
    del data["taxonomy_definition"]  # as written before records held their taxonomy
    path.write_text(json.dumps(data))
    from lt_faceparse.records import record_taxonomy

    old = load_record(path)
    assert old.taxonomy_definition is None and record_taxonomy(old) is get_taxonomy("celebamask-hq")
