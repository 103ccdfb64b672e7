import json
import math

import numpy as np
import pandas as pd
import pytest

from lt_faceparse.analysis.frequency import (FREQUENCY_COLUMNS, FrequencyTable, compute_class_frequencies,
                                             write_frequency_report)
from lt_faceparse.cli import main
from lt_faceparse.custom_taxonomy import taxonomy_from_names
from lt_faceparse.errors import DataError

TAX = taxonomy_from_names("freq4", ["background", "skin", "nose", "hat"])


class _Labels:
    dataset_name, split, merge = "toy", "test", None

    def __init__(self, labels, root="/toy"):
        self.labels, self.root, self.taxonomy = labels, root, TAX
        self.names = [f"img{i}" for i in range(len(labels))]

    def __len__(self):
        return len(self.labels)

    def read_label(self, i):
        return self.labels[i]

    def describe_item(self, i):
        return f"{self.root} [{self.split}] {self.names[i]}"


def test_known_answer_frequencies():
    a = np.array([[0, 0, 1, 1], [1, 1, 2, 255]], np.uint8)  # 7 valid pixels: bg 2, skin 4, nose 1
    b = np.array([[1, 1, 1, 3], [1, 1, 1, 1]], np.uint8)  # 8 pixels: skin 7, hat 1
    t = compute_class_frequencies(_Labels([a, b]))
    f = t.frame.set_index("class_name")
    assert f["images_with_class"].tolist() == [1, 2, 1, 1]
    assert f["presence_prob"].tolist() == [0.5, 1.0, 0.5, 0.5]
    assert f["pixel_count"].tolist() == [2, 11, 1, 1]
    assert f.loc["skin", "pixel_share"] == pytest.approx(11 / 15)
    assert f.loc["skin", "mean_area_when_present"] == pytest.approx((4 / 7 + 7 / 8) / 2)
    assert f.loc["hat", "mean_area_when_present"] == pytest.approx(1 / 8)
    assert f["bin"].tolist() == ["common", "frequent", "common", "common"]
    s = t.summary
    assert s["num_images"] == 2
    # foreground presence (1, .5, .5): sum|xi-xj| = 2, 2 n^2 mean = 12
    assert s["gini_image"] == pytest.approx(2 / 12)
    # foreground pixels (11, 1, 1): sum|xi-xj| = 40, 2 n^2 mean = 78
    assert s["gini_pixel"] == pytest.approx(40 / 78)
    assert t.bins() == {"rare": [], "common": ["background", "nose", "hat"], "frequent": ["skin"]}


def test_unknown_id_names_the_image():
    bad = np.array([[0, 7]], np.uint8)
    with pytest.raises(DataError, match=r"img1.*\[7\]"):
        compute_class_frequencies(_Labels([np.zeros((1, 2), np.uint8), bad]))


def test_report_files_and_exact_columns(tmp_path):
    a = np.array([[0, 1], [2, 3]], np.uint8)
    t = compute_class_frequencies(_Labels([a, a, np.zeros((2, 2), np.uint8)]))
    paths = write_frequency_report(t, tmp_path, log_scale=True)
    assert {p.name for p in paths.values()} == {"class_frequencies.csv", "summary.json", "class_frequencies.png",
                                                "class_frequencies.pdf"}
    frame = pd.read_csv(tmp_path / "class_frequencies.csv")
    assert tuple(frame.columns[:8]) == FREQUENCY_COLUMNS
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {"num_images", "gini_image", "gini_pixel", "merge", "split", "dataset"} <= set(summary)
    assert (tmp_path / "class_frequencies.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "class_frequencies.pdf").read_bytes()[:4] == b"%PDF"
    back = FrequencyTable.read(tmp_path)
    assert back.bins() == t.bins()
    assert list(back.columns) == list(t.columns)
    for name, values in t.columns.items():  # every column back exactly, of the same kind (NaN as NaN)
        got = back.columns[name]
        assert got.dtype.kind == values.dtype.kind, name
        np.testing.assert_array_equal(got, values, err_msg=name)


def test_a_report_written_before_display_names_reads_and_plots(tmp_path):
    a = np.array([[0, 1], [2, 3]], np.uint8)
    t = compute_class_frequencies(_Labels([a, np.zeros((2, 2), np.uint8)]))
    write_frequency_report(t, tmp_path)
    csv = tmp_path / "class_frequencies.csv"
    csv.write_text("\n".join(",".join(line.split(",")[:8]) for line in csv.read_text().splitlines()) + "\n")
    back = FrequencyTable.read(tmp_path)
    assert back.columns["display_name"].tolist() == list(t.taxonomy.display_names)
    assert back.columns["kind"].tolist() == t.columns["kind"].tolist()
    assert write_frequency_report(back, tmp_path / "again")["png"].is_file()


# ---- SynthFace-LT ------------------------------------------------------------------------------

PRESENCE = {"eye_g": 0.4, "hat": 0.5, "ear_r": 0.3, "neck_l": 0.2}
N = 160


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from lt_faceparse.data.synthetic import generate_synthface

    return generate_synthface(tmp_path_factory.mktemp("sf") / "celeba", num_images=N, size=48, seed=3,
                              presence=PRESENCE, num_workers=0)


def test_synthface_frequencies_match_presence_table(synth):
    from lt_faceparse.analysis.frequency import _open_splits

    table = json.loads((synth / "presence.json").read_text())["presence"]
    t = compute_class_frequencies(_open_splits("celebamask-hq", synth, "all", "segface"))
    assert t.summary["num_images"] == N and t.summary["split"] == "all"
    got = t.presence()
    # classes painted last under the segface order (nothing paints over them) plus skin and nose
    for name in ("eye_g", "hat", "ear_r", "neck_l", "skin", "nose"):
        p = table[name]
        tol = 4 * math.sqrt(p * (1 - p) / N) + 1.5 / N
        assert abs(got[name] - p) <= tol, (name, got[name], p)


def test_freq_cli_two_presets(synth, tmp_path, capsys):
    out = tmp_path / "freq"
    assert main(["freq", "--dataset", "celebamask-hq", "--root", str(synth), "--split", "test",
                 "--merge", "segface", "zll", "--out", str(out)]) == 0
    for preset in ("segface", "zll"):
        summary = json.loads((out / preset / "summary.json").read_text())
        assert summary["merge"] == preset and summary["split"] == "test"
        assert (out / preset / "class_frequencies.pdf").is_file()
    comp = pd.read_csv(out / "merge_comparison.csv")
    assert {"presence_prob[segface]", "presence_prob[zll]"} <= set(comp.columns)
    # zll paints hair over glasses: glasses can only lose images relative to segface (glasses on top)
    eg = comp.set_index("class_name").loc["eye_g"]
    assert eg["presence_prob[zll]"] <= eg["presence_prob[segface]"]
    assert (out / "merge_comparison.png").is_file()
    assert "Gini" in capsys.readouterr().out
