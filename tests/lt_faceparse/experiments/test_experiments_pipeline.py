"""Sweep -> records -> report on a tiny model and a few generated images (the whole report path)."""

import json

import pytest

from lt_faceparse.engine.config import load_config
from lt_faceparse.errors import DataError
from lt_faceparse.experiments.parallel import run_sweep
from lt_faceparse.experiments.sweep import SweepSetting, data_root, plan_sweep
from lt_faceparse.reporting.sweep_rows import find_sweep_rows, load_sweep_row


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """Two settings (32 and 64 px) of the tiny parser, one epoch on 40 SynthFace-LT images."""
    import torch

    torch.set_num_threads(1)
    base = tmp_path_factory.mktemp("sweep")
    cfg = load_config("synth_tiny", [f"data.root={base / 'data'}", "optim.epochs=1", "optim.milestones=[1]",
                                     "data.synthetic={num_images: 40, size: 64, seed: 0}"])
    rows = run_sweep(cfg, base / "results", resolutions=[32, 64], speed_runs=2, n_resamples=50,
                     runs_dir=base / "runs")
    return base, cfg, rows


def test_plan_sweep_axes():
    cfg = load_config("synth_segface_mobilenet")
    plan = plan_sweep(cfg, resolutions=[64, 96])
    assert [(s.axis, s.resolution, s.backbone) for s, _ in plan] == [("resolution", 64, "mobilenet"),
                                                                     ("resolution", 96, "mobilenet")]
    assert [c["data"]["resolution"] for _, c in plan] == [64, 96]
    assert cfg["data"]["resolution"] == 128  # the given config is not modified
    plan = plan_sweep(cfg, backbones=["mobilenet", "timm/resnet10t"])
    assert [s.name for s, _ in plan] == ["segface-mobilenet-r128", "segface-timm_resnet10t-r128"]
    assert plan[1][1]["model"]["kwargs"]["backbone"] == "timm/resnet10t"
    assert SweepSetting("grid", "segface", None, 64).name == "segface-default-r64"
    with pytest.raises(ValueError):
        plan_sweep(cfg)


def test_sweep_rows_records_and_resume(swept):
    base, cfg, rows = swept
    assert [r["resolution"] for r in rows] == [32, 64]
    for row in rows:
        assert row["dataset"] == "synthface-lt" and row["split"] == "test" and row["axis"] == "resolution"
        assert 0.0 <= row["mean_f1"] <= 1.0 and row["fps"] > 0 and row["params"] > 0
        assert row["num_images"] == 4 and row["train_images"] == 32
        folder = base / "results" / row["name"]
        record = json.loads((folder / "test" / "record.json").read_text())
        assert record["provenance"]["dataset"] == "synthface-lt"
        assert record["provenance"]["data_format"] == "celebamask-hq"
        assert record["provenance"]["data_root"] == str(data_root(cfg).resolve())
        assert record["ci"]["mean_f1"]["lower"] <= record["mean_f1"] <= record["ci"]["mean_f1"]["upper"]
        run = base / "runs" / row["name"] / f"run-{row['config_fingerprint']}"
        assert (run / "final.safetensors").is_file()  # weights kept out of results
        assert not list(folder.glob("run*"))
    assert find_sweep_rows(base / "results") == rows
    before = (base / "results" / rows[0]["name"] / "sweep.json").stat().st_mtime_ns
    again = run_sweep(cfg, base / "results", resolutions=[32], speed_runs=2, n_resamples=50, runs_dir=base / "runs")
    assert again == rows[:1]
    assert (base / "results" / rows[0]["name"] / "sweep.json").stat().st_mtime_ns == before  # skipped
    longer = load_config("synth_tiny", [f"data.root={base / 'data'}", "optim.epochs=2", "optim.milestones=[2]",
                                        "data.synthetic={num_images: 40, size: 64, seed: 0}"])
    retrained = run_sweep(longer, base / "results2", resolutions=[32], speed_runs=2, n_resamples=50,
                          runs_dir=base / "runs")
    assert retrained[0]["epochs"] == 2  # a changed config never reuses the 1-epoch weights
    assert retrained[0]["config_fingerprint"] != rows[0]["config_fingerprint"]
    assert len(list((base / "runs" / rows[0]["name"]).glob("run-*"))) == 2


def test_config_fingerprint_ignores_location_but_not_training_settings():
    from lt_faceparse.experiments.sweep import config_fingerprint

    cfg = load_config("synth_tiny")
    moved = {**cfg, "out": "/elsewhere", "resume": True, "device": "cuda"}
    assert config_fingerprint(moved) == config_fingerprint(cfg)
    longer = load_config("synth_tiny", ["optim.epochs=99"])
    assert config_fingerprint(longer) != config_fingerprint(cfg)
    # the same data folder in another cache (a fresh clone, another user) keeps the fingerprint; other data does not
    here = load_config("synth_tiny", ["data.root=/home/a/.cache/synthface-celebamask-hq-n240-s96-seed0-7ad80a43"])
    there = load_config("synth_tiny", ["data.root=/root/cache/synthface-celebamask-hq-n240-s96-seed0-7ad80a43"])
    other = load_config("synth_tiny", ["data.root=/root/cache/synthface-celebamask-hq-n999-s96-seed0-7ad80a43"])
    assert config_fingerprint(here) == config_fingerprint(there) != config_fingerprint(other)


def test_load_sweep_row_names_the_file(tmp_path):
    path = tmp_path / "sweep.json"
    path.write_text('{"kind": "sweep", "name": "x"}')
    with pytest.raises(DataError, match="sweep.json.*lacks"):
        load_sweep_row(path)


def test_report_from_sweep_results(swept, tmp_path):
    from lt_faceparse.analysis.frequency import compute_class_frequencies, write_frequency_report
    from lt_faceparse.data import build_dataset
    from lt_faceparse.reporting.readme import write_readme
    from lt_faceparse.reporting.report import run_report

    base, cfg, rows = swept
    root = data_root(cfg)
    table = compute_class_frequencies(build_dataset("celebamask-hq", root, "train", resolution=None))
    write_frequency_report(table, tmp_path / "freq")
    out = tmp_path / "report"
    outputs = run_report(base / "results", out, freq=tmp_path / "freq", examples=2, n_resamples=50)
    write_readme(out, outputs, {"command": "test"})

    # one model at its most common (here: smallest tied) resolution goes into the per-model figures
    for stem in ("fig1_presence_vs_f1", "f1_vs_log_presence", "fps_vs_resolution", "qualitative",
                 "confusion_tiny_32"):
        for ext in ("png", "pdf", "caption.txt"):
            assert (out / "figures" / f"{stem}.{ext}").is_file(), f"{stem}.{ext}"
    assert not (out / "figures" / "confusion_tiny_64.png").exists()
    caption = (out / "figures" / "fig1_presence_vs_f1.caption.txt").read_text()
    assert "synthface-lt" in caption and "test split" in caption and "'input'" in caption and "tiny" in caption
    for stem in ("table2b_resolution", "speed", "leaderboard-synthface_lt-celebamask_hq-test-segface-input"):
        for ext in ("md", "csv", "tex"):
            assert (out / "tables" / f"{stem}.{ext}").is_file(), f"{stem}.{ext}"
    # our records form one group; the published CelebAMask-HQ rows never join it
    ours = [g for g in outputs.leaderboard.groups if g.protocol["dataset"] == "synthface-lt"]
    assert len(ours) == 1 and len(ours[0].records) == 2
    assert all(not r.provenance.reported for r in ours[0].records)
    assert any(g.protocol["dataset"] == "celebamask-hq" for g in outputs.leaderboard.groups)
    # the tiny parser has no class tokens: no token figures, and no error
    assert not list((out / "figures").glob("token_*"))
    readme = (out / "README.md").read_text()
    assert "## Headline findings" in readme and "Mean F1" in readme
    assert "The data is long-tailed" in readme and "Gini coefficient" in readme
    assert "`figures/qualitative.{caption.txt,pdf,png}`" in readme
    table2b = (out / "tables" / "table2b_resolution.md").read_text().splitlines()
    ours = [line for line in table2b if line.startswith("| ours")]
    assert [line.split(" | ")[3] for line in ours] == ["32", "64"]  # our tiny sweep, by resolution
    assert sum(line.startswith("| paper (CelebAMask-HQ)") for line in table2b) == 8  # the paper's Table 2b


def test_benchmark_plans_make_valid_training_configs(tmp_path):
    from lt_faceparse.engine.config import validate_config
    from lt_faceparse.experiments.benchmark import plan_config
    from lt_faceparse.experiments.plans import DEFAULT, QUICK

    for plan in (QUICK, DEFAULT):
        assert sum(plan.splits) == pytest.approx(1.0)
        for res in (plan.resolution, *plan.sweep_resolutions):
            assert res % 32 == 0  # SegFace needs multiples of its deepest stride
        for model, kwargs in plan.models:
            cfg = plan_config(plan, tmp_path, model, kwargs, plan.resolution)
            validate_config(cfg)
            assert cfg["model"] == {"name": model, "kwargs": kwargs}
            assert cfg["data"]["root"] == str(tmp_path) and cfg["data"]["synthetic"] is None
            assert cfg["optim"]["epochs"] == plan.epochs and cfg["device"] == "cpu"


def test_main_setting_prefers_the_shared_resolution():
    from lt_faceparse.reporting.sweep_tables import main_setting

    rows = [{"model": "segface", "backbone": "m", "resolution": r} for r in (32, 64, 96)]
    rows.append({"model": "fcn", "backbone": "m", "resolution": 64})
    assert main_setting(rows) == ("segface", "m", 64)
    assert main_setting(rows[3:]) == ("fcn", "m", 64)
    assert main_setting([]) == (None, None, None)
