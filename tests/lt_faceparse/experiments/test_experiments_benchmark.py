"""The CI smoke run of the one-command benchmark (``lt-faceparse benchmark --quick``)."""

import json
from pathlib import Path

import pytest

from lt_faceparse.cli import main
from lt_faceparse.records import load_record
from lt_faceparse.speed.harness import find_speed_records


def records_test_images(out) -> int:
    return load_record(out / "results" / "segface-timm_mobilenetv3_large_100-r64" / "test").num_images


@pytest.mark.slow
def test_quick_benchmark_produces_the_report(tmp_path):
    out = tmp_path / "reports"
    assert main(["benchmark", "--quick", "--out", str(out), "--cache", str(tmp_path / "cache")]) == 0

    info = json.loads((out / "benchmark.json").read_text())
    assert info["plan"]["name"] == "quick"
    assert info["timings_s"]["total"] > 0
    assert set(info["timings_s"]) >= {"data", "frequencies", "train+eval", "speed", "report"}
    assert info["machine"]["workers"] == 2 and not info["reused_results"]
    main_name = "segface-timm_mobilenetv3_large_100-r64"
    # the model comparison, SegFace trained again with copy-paste (same budget), and cRT's second stage
    assert {s["name"] for s in info["settings"]} == {main_name, f"{main_name}-copy_paste", f"{main_name}-crt",
                                                     "fcn-timm_mobilenetv3_large_100-r64"}
    assert all(s["train_seconds"] > 0 and s["val_head_mean_f1"] is not None for s in info["settings"])

    figures = out / "figures"
    for stem in ("fig1_presence_vs_f1", "f1_vs_log_presence", "fps_vs_resolution", "qualitative", "class_legend",
                 "confusion_segface_timm_mobilenetv3_large_100_64", "confusion_fcn_timm_mobilenetv3_large_100_64",
                 "token_masks_segface_timm_mobilenetv3_large_100_64_0",
                 "token_attention_segface_timm_mobilenetv3_large_100_64_0", "longtail_models_delta_vs_presence"):
        for ext in ("png", "pdf", "caption.txt"):
            assert (figures / f"{stem}.{ext}").stat().st_size > 0, f"{stem}.{ext}"
    tables = out / "tables"
    for stem in ("leaderboard-synthface_lt-celebamask_hq-test-segface-input", "table2a_backbones",
                 "table2b_resolution", "speed", "longtail_models", "longtail_models_delta"):
        for ext in ("md", "csv", "tex"):
            assert (tables / f"{stem}.{ext}").stat().st_size > 0, f"{stem}.{ext}"
    assert "\\toprule" in (tables / "table2a_backbones.tex").read_text()
    # the rarity control (accessories at presence 0.5) against plain, each remedy and τ-norm read as a share of the gap
    for ext in ("md", "csv", "tex"):
        assert (tables / f"rarity_gap.{ext}").stat().st_size > 0
    for ext in ("png", "pdf"):
        assert (figures / f"rarity_gap.{ext}").stat().st_size > 0
    rarity = json.loads((out / "rarity" / "rarity.json").read_text())
    assert [r["name"] for r in rarity["test_rows"]] == ["E-Glasses", "Hat", "Earring", "Necklace", "tail mean"]
    assert set(rarity["test_rows"][0]["closed"]) == {"copy_paste", "crt", "flip_tta", "τ-norm(τ=0.25)", "τ-norm(τ=0.5)",
                                                     "τ-norm(τ=0.75)", "τ-norm(τ=1)"}
    assert load_record(out / "rarity" / "control" / "test").num_images == records_test_images(out)
    assert (out / "frequencies" / "class_frequencies.csv").is_file()

    records = {p.parent.parent.name: load_record(p) for p in (out / "results").glob("*/test/record.json")}
    # ... and the plain SegFace weights scored again with flip TTA (the plan's post-hoc option)
    assert set(records) == {main_name, f"{main_name}-copy_paste", f"{main_name}-crt", f"{main_name}-flip_tta",
                            "fcn-timm_mobilenetv3_large_100-r64"}
    # cRT started from the plain run's last checkpoint: its schedule was not trained twice
    crt_log = Path(info["runs_dir"]).glob(f"{main_name}-crt/run-*/log.jsonl")
    assert [json.loads(line)["event"] for line in next(crt_log).read_text().splitlines()].count("epoch") == 0
    assert records[f"{main_name}-copy_paste"].provenance.longtail["copy_paste"]["prob"] == 0.5
    assert records[f"{main_name}-flip_tta"].provenance.posthoc["tta"] == "flip"
    assert records[f"{main_name}-flip_tta"].provenance.weights == records[main_name].provenance.weights
    assert (out / "results" / f"{main_name}-flip_tta" / "val" / "record.json").is_file()
    for record in records.values():
        assert 0.0 <= record.mean_f1 <= 1.0
        lo, hi = record.ci["mean_f1"]["lower"], record.ci["mean_f1"]["upper"]
        assert lo <= record.mean_f1 <= hi
        assert record.provenance.dataset == "synthface-lt" and record.provenance.split == "test"
        assert record.per_image.num_images == record.num_images > 0
    speeds = find_speed_records(out / "results")
    segface = [s for s in speeds if s["model"] == "segface" and s["batch_size"] == 1 and s["resolution"] == 64]
    assert segface and all(s["fps"] > 0 and s["gflops"] > 0 for s in segface)
    # SegFace with MobileNetV3-Large: the paper's Table 2a prints 7.034 M parameters (11-class model; the
    # 19-class model has 8 x 256 more)
    assert segface[0]["params"] == pytest.approx(7.034e6 + 8 * 256, abs=2e3)

    readme = (out / "README.md").read_text()
    assert "## Headline findings" in readme and "SegFace" in readme and "## Long-tail remedies" in readme
    assert "copy_paste (copy-paste(p=0.5" in readme and "flip_tta (flip TTA)" in readme
    assert "**Chosen on val**" in readme and "**Rerunning.**" in readme
    assert "fig1_presence_vs_f1" in readme and "benchmark.json" in readme


# ---- rerun semantics, plans, parallel training (tiny models) ------------------------------------------

def _toy_plan(**changes):
    import dataclasses

    from lt_faceparse.experiments.plans import BACKBONE, QUICK

    plan = dataclasses.replace(
        QUICK, name="toy", num_images=30, image_size=32, splits=(0.6, 0.2, 0.2), resolution=32, epochs=1,
        milestones=(1,), batch=6, models=(("tiny", {"width": 8}), ("fcn", {"backbone": BACKBONE, "pretrained": False})),
        speed_resolutions=(32,), speed_runs=1, n_resamples=20, examples=1, workers=1, precise_bn_batches=0,
        remedies=(), posthoc=())
    return dataclasses.replace(plan, **changes)


def _tiny_setting(tmp_path, epochs=1):
    from lt_faceparse.engine.config import load_config
    from lt_faceparse.experiments.sweep import setting_of

    cfg = load_config("synth_tiny", [f"data.root={tmp_path / 'data'}", f"optim.epochs={epochs}", "optim.milestones=[1]",
                                     "data.synthetic={num_images: 24, size: 32, seed: 0}", "data.resolution=32",
                                     "model.kwargs.width=8"])
    return setting_of(cfg), cfg


def test_a_row_without_its_weights_is_retrained(tmp_path):
    """A results folder that arrives without the run cache (a fresh clone) is trained again; a row whose
    weights this machine holds is reused; reuse="results" takes the row as it is and never trains."""
    import shutil

    from lt_faceparse.experiments.sweep import MissingResult, finished_row, run_setting, weights_digest

    setting, cfg = _tiny_setting(tmp_path)
    results, runs = tmp_path / "results", tmp_path / "runs"
    messages = []
    first = run_setting(setting, cfg, results, speed_runs=0, n_resamples=10, runs_dir=runs, log=messages.append)
    weights = runs / setting.name / f"run-{first['config_fingerprint']}" / "final.safetensors"
    assert first["train_seconds"] is not None and first["weights_sha256"] == weights_digest(weights)
    assert first["fps"] is None and first["params"] > 0  # not timed: timed apart by the benchmark
    assert first["val"]["split"] == "val" and (results / setting.name / "val" / "record.json").is_file()
    assert finished_row(setting, cfg, results, runs_dir=runs) == first

    # this machine trained it: skipped, the row untouched
    row_path = results / setting.name / "sweep.json"
    before = row_path.stat().st_mtime_ns
    assert run_setting(setting, cfg, results, speed_runs=0, n_resamples=10, runs_dir=runs, log=messages.append) == first
    assert row_path.stat().st_mtime_ns == before and "trained earlier on this machine" in messages[-1]

    # a row from elsewhere next to this machine's finished run of the same config: re-scored, not retrained
    row = json.loads(row_path.read_text())
    row_path.write_text(json.dumps({**row, "weights_sha256": "0" * 64}))
    rescored = run_setting(setting, cfg, results, speed_runs=0, n_resamples=10, runs_dir=runs, log=messages.append)
    assert rescored["train_seconds"] is None and rescored["weights_sha256"] == first["weights_sha256"]
    assert "re-scoring the weights" in messages[-2] and rescored["mean_f1"] == first["mean_f1"]

    # fresh clone: the committed row is there, the run cache is not -> trained again
    shutil.rmtree(runs)
    assert finished_row(setting, cfg, results, runs_dir=runs) is None
    assert finished_row(setting, cfg, results, runs_dir=runs, reuse="results") == rescored
    again = run_setting(setting, cfg, results, speed_runs=0, n_resamples=10, runs_dir=runs, log=messages.append)
    assert again["train_seconds"] is not None and weights.is_file()
    assert any("not trained here" in m for m in messages)
    assert again["weights_sha256"] == first["weights_sha256"]  # deterministic training, same weights

    # --reuse-results: no training, not even for a missing run folder; a missing row is an error
    shutil.rmtree(runs)
    assert run_setting(setting, cfg, results, reuse="results", runs_dir=runs) == again
    assert not runs.exists()
    shutil.rmtree(results / setting.name)
    with pytest.raises(MissingResult, match="sweep.json is missing.*reuse-results"):
        run_setting(setting, cfg, results, reuse="results", runs_dir=runs)
    assert not runs.exists()


@pytest.mark.slow
def test_parallel_workers_train_the_same_weights_as_one_process(tmp_path):
    from lt_faceparse.experiments.parallel import run_settings
    from lt_faceparse.experiments.sweep import plan_sweep

    _, cfg = _tiny_setting(tmp_path, epochs=2)
    cfg["optim"]["milestones"] = [1]
    jobs = plan_sweep(cfg, resolutions=[32, 64])
    serial = run_settings(jobs, tmp_path / "serial", workers=1, runs_dir=tmp_path / "runs_serial", speed_runs=0,
                          n_resamples=10)
    messages = []
    parallel = run_settings(jobs, tmp_path / "parallel", workers=2, runs_dir=tmp_path / "runs_parallel",
                            speed_runs=0, n_resamples=10, log=messages.append)
    assert [r["name"] for r in parallel] == [r["name"] for r in serial] == ["tiny-default-r32", "tiny-default-r64"]
    assert [r["weights_sha256"] for r in parallel] == [r["weights_sha256"] for r in serial]
    assert [r["mean_f1"] for r in parallel] == [r["mean_f1"] for r in serial]
    assert sum("mean F1" in m for m in messages) == 2  # each worker's log lines come back to the parent


def test_plan_settings_remedies_and_schedule(tmp_path):
    import dataclasses

    from lt_faceparse.experiments.benchmark import plan_settings
    from lt_faceparse.experiments.plans import DEFAULT, GPU, QUICK, select_plan

    assert select_plan() is DEFAULT and select_plan(quick=True) is QUICK and select_plan(device="cuda") is GPU
    assert select_plan(name="gpu", quick=True) is GPU
    with pytest.raises(ValueError, match="unknown benchmark plan"):
        select_plan(name="huge")
    from lt_faceparse.longtail.spec import canonical_longtail, default_longtail

    plan = dataclasses.replace(DEFAULT, models=GPU.models, remedies=("focal", "repeat_factor"), sweep_resolutions=(32,))
    jobs = plan_settings(plan, tmp_path)
    names = [s.name for s, _ in jobs]
    main = f"segface-timm_mobilenetv3_large_100-r{plan.resolution}"
    # longest first: SegFace and its remedies, then the baselines, then the cheaper low-resolution point
    assert names[:3] == [main, f"{main}-focal", f"{main}-repeat_factor"]
    assert names[-1] == "segface-timm_mobilenetv3_large_100-r32"
    assert set(names[3:6]) == {f"{m}-timm_mobilenetv3_large_100-r{plan.resolution}" for m in ("fcn", "segformer")} | \
        {f"bisenet-default-r{plan.resolution}"}
    by_name = dict(zip(names, (c for _, c in jobs)))
    # the shipped remedy file's section (parameters chosen on val) replaces the plain one
    assert canonical_longtail(by_name[f"{main}-focal"]["longtail"])["loss"] == {"name": "focal", "gamma": 2.0,
                                                                              "weights": "none", "beta": 0.999,
                                                                              "counts": "pixels"}
    assert canonical_longtail(by_name[f"{main}-repeat_factor"]["longtail"])["sampler"]["threshold"] == 0.3
    assert by_name[main]["longtail"] == default_longtail()
    remedy_setting = next(s for s, _ in jobs if s.remedy == "focal")
    assert remedy_setting.axis == "remedy" and remedy_setting.model == "segface"
    # every setting has the same schedule (the remedy comparison is at the same budget)
    for cfg in by_name.values():
        assert (cfg["optim"]["epochs"], cfg["optim"]["lr"], cfg["batch"]["global"]) == (plan.epochs, plan.lr, plan.batch)
    # every setting flips when the plan does, and the data's flip follows the plan
    assert all(cfg["data"]["flip"] is plan.flip for cfg in by_name.values())
    # the CPU plan's narrower SegFace is cheaper than BiSeNet: the main model's setting still comes first (the
    # rarity control, its stage and the shared first stage read it there), then the longest
    cpu = [(s.name, s.axis) for s, _ in plan_settings(DEFAULT, tmp_path)]
    assert cpu[0] == (f"{main}", "model") and cpu[1] == (f"bisenet-default-r{plan.resolution}", "model")
    assert [n for n, _ in cpu[2:]] == [f"{main}-{r}" for r in DEFAULT.remedies]
    assert plan_settings(DEFAULT, tmp_path)[0][1]["model"]["kwargs"]["dim"] == 128
    with pytest.raises(ValueError, match="not a remedy"):
        plan_settings(dataclasses.replace(plan, remedies=("plain",)), tmp_path)
    with pytest.raises(FileNotFoundError, match="no such remedy"):
        plan_settings(dataclasses.replace(plan, remedies=("no_such_remedy",)), tmp_path)


def test_gpu_plan_configs(tmp_path):
    from lt_faceparse.engine.config import validate_config
    from lt_faceparse.errors import LTFaceParseError
    from lt_faceparse.experiments.benchmark import plan_config, run_benchmark
    from lt_faceparse.experiments.plans import GPU

    assert GPU.resolution >= 256 and GPU.device == "cuda" and GPU.precision == "bf16"
    cfg = plan_config(GPU, tmp_path, *GPU.models[0], GPU.resolution)
    validate_config(cfg)
    assert cfg["device"] == "cuda" and cfg["precision"] == "bf16" and cfg["data"]["num_workers"] == GPU.loader_workers
    assert cfg["batch"]["global"] == GPU.batch and cfg["data"]["resolution"] == GPU.resolution
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(LTFaceParseError, match="CUDA"):
            run_benchmark(tmp_path / "out", plan=GPU, cache_dir=tmp_path / "cache")


@pytest.mark.slow
def test_benchmark_fresh_clone_trains_and_reuse_results_does_not(tmp_path):
    """The toy plan with the GPU plan's machinery (data-loader workers, 2 training workers) on a CPU:
    a run; the same results with a new cache (a fresh clone) are trained again; --reuse-results trains
    nothing and re-renders the report; a rerun on the machine that trained skips every setting."""
    import shutil

    from lt_faceparse.experiments.benchmark import run_benchmark

    plan = _toy_plan(workers=2, loader_workers=1, precision="bf16")
    out = tmp_path / "reports"
    run_benchmark(out, plan=plan, cache_dir=tmp_path / "machine_a", log=lambda m: None)
    first = json.loads((out / "benchmark.json").read_text())
    assert len(first["settings"]) == 2 and all(s["train_seconds"] is not None for s in first["settings"])
    assert (out / "tables" / "longtail_models.md").is_file()

    shutil.copytree(out, tmp_path / "clone")
    messages = []
    run_benchmark(tmp_path / "clone", plan=plan, cache_dir=tmp_path / "machine_b", log=messages.append)
    clone = json.loads((tmp_path / "clone" / "benchmark.json").read_text())
    assert all(s["train_seconds"] is not None for s in clone["settings"])  # trained again
    assert list((tmp_path / "machine_b" / "benchmark_runs" / "toy").rglob("final.safetensors"))
    assert not any("skipped" in m for m in messages)

    from lt_faceparse.experiments.plans import recorded_plan

    assert recorded_plan(out) == plan  # benchmark.json round trip
    messages = []  # no plan given: --reuse-results re-renders with the plan recorded in benchmark.json
    run_benchmark(out, cache_dir=tmp_path / "machine_c", reuse_results=True, log=messages.append)
    reused = json.loads((out / "benchmark.json").read_text())
    assert reused["reused_results"] and "train+eval" in reused["timings_s"] and "speed" not in reused["timings_s"]
    assert reused["trained_by"]["settings"] == first["settings"]
    assert not (tmp_path / "machine_c" / "benchmark_runs").exists()
    assert sum("not trained" in m for m in messages) == 2
    readme = (out / "README.md").read_text()
    assert "**Results reused**" in readme and "Long-tail remedies" in readme

    messages = []
    run_benchmark(out, plan=plan, cache_dir=tmp_path / "machine_a", log=messages.append)
    assert sum("trained earlier on this machine" in m for m in messages) == 2


def test_results_of_settings_outside_the_plan_are_removed(tmp_path):
    from lt_faceparse.experiments.benchmark import plan_settings, prune_other_results
    from lt_faceparse.experiments.plans import QUICK

    jobs = plan_settings(QUICK, tmp_path / "synth")
    main = "segface-timm_mobilenetv3_large_100-r64"
    results = tmp_path / "results"
    for name in (main, f"{main}-crt", f"{main}-flip_tta", f"{main}-logit_adjusted", "fcn-old-r32"):
        (results / name).mkdir(parents=True)
        (results / name / "sweep.json").write_text("{}")
    (results / "speed").mkdir()
    (results / "notes").mkdir()  # not a setting's results: kept
    lines = []
    assert prune_other_results(QUICK, jobs, results, lines.append) == ["fcn-old-r32", f"{main}-logit_adjusted"]
    assert sorted(p.name for p in results.iterdir()) == sorted([main, f"{main}-crt", f"{main}-flip_tta", "notes",
                                                               "speed"])
    assert lines == [f"removed the results of settings outside plan 'quick': fcn-old-r32, {main}-logit_adjusted"]
