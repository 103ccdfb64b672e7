"""The CI smoke run of the one-command benchmark (``lt-faceparse benchmark --quick``)."""

import json

import pytest

from lt_faceparse.cli import main
from lt_faceparse.records import load_record
from lt_faceparse.speed import find_speed_records


@pytest.mark.slow
def test_quick_benchmark_produces_the_report(tmp_path):
    out = tmp_path / "reports"
    assert main(["benchmark", "--quick", "--out", str(out), "--cache", str(tmp_path / "cache")]) == 0

    info = json.loads((out / "benchmark.json").read_text())
    assert info["plan"]["name"] == "quick"
    assert info["timings_s"]["total"] > 0
    assert set(info["timings_s"]) >= {"data", "frequencies", "train+eval (model comparison)", "speed", "report"}

    figures = out / "figures"
    for stem in ("fig1_presence_vs_f1", "f1_vs_log_presence", "fps_vs_resolution", "qualitative", "class_legend",
                 "confusion_segface_timm_mobilenetv3_large_100_64", "confusion_fcn_timm_mobilenetv3_large_100_64",
                 "token_masks_segface_timm_mobilenetv3_large_100_64_0",
                 "token_attention_segface_timm_mobilenetv3_large_100_64_0"):
        for ext in ("png", "pdf", "caption.txt"):
            assert (figures / f"{stem}.{ext}").stat().st_size > 0, f"{stem}.{ext}"
    tables = out / "tables"
    for stem in ("leaderboard-synthface_lt-celebamask_hq-test-segface-input", "table2a_backbones",
                 "table2b_resolution", "speed"):
        for ext in ("md", "csv", "tex"):
            assert (tables / f"{stem}.{ext}").stat().st_size > 0, f"{stem}.{ext}"
    assert "\\toprule" in (tables / "table2a_backbones.tex").read_text()
    assert (out / "frequencies" / "class_frequencies.csv").is_file()

    records = {p.parent.parent.name: load_record(p) for p in (out / "results").glob("*/test/record.json")}
    assert set(records) == {"segface-timm_mobilenetv3_large_100-r64", "fcn-timm_mobilenetv3_large_100-r64"}
    for record in records.values():
        assert 0.0 <= record.mean_f1 <= 1.0
        lo, hi = record.ci["mean_f1"]["lower"], record.ci["mean_f1"]["upper"]
        assert lo <= record.mean_f1 <= hi
        assert record.provenance["dataset"] == "synthface-lt" and record.provenance["split"] == "test"
        assert record.per_image.num_images == record.num_images > 0
    speeds = find_speed_records(out / "results")
    segface = [s for s in speeds if s["model"] == "segface" and s["batch_size"] == 1 and s["resolution"] == 64]
    assert segface and all(s["fps"] > 0 and s["gflops"] > 0 for s in segface)
    # SegFace with MobileNetV3-Large: the paper's Table 2a prints 7.034 M parameters (11-class model; the
    # 19-class model has 8 x 256 more)
    assert segface[0]["params"] == pytest.approx(7.034e6 + 8 * 256, abs=2e3)

    readme = (out / "README.md").read_text()
    assert "## Headline findings" in readme and "SegFace" in readme
    assert "fig1_presence_vs_f1" in readme and "benchmark.json" in readme
