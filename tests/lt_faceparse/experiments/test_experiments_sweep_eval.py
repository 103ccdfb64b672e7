"""The sweep scores and times a run through the one evaluation of a weight file (issue 25's LaPa bug:
the sweep's test record lacked the RoI tanh-warp the weights were trained in)."""

from __future__ import annotations

import numpy as np

from lt_faceparse.data.synthetic import ensure_synthface
from lt_faceparse.engine.config import load_config
from lt_faceparse.engine.evaluate import evaluate_checkpoint
from lt_faceparse.experiments.sweep import SweepSetting, run_folder, run_setting
from lt_faceparse.records import load_record
from lt_faceparse.reporting.report import run_report
from lt_faceparse.speed.harness import find_speed_records

SYNTH = {"num_images": 20, "size": 48, "seed": 1}


def test_a_lapa_sweep_record_states_the_warp_and_equals_eval_on_the_same_weights(tmp_path):
    config = load_config("lapa_segface_swinb_512", [
        "model.name=tiny", "model.kwargs={width: 4}", f"data.root={tmp_path / 'synth'}", f"data.synthetic={SYNTH}",
        "data.resolution=48", "data.num_workers=0", "optim.epochs=1", "batch.global=4", "batch.per_gpu=null",
        "val.every_epochs=1", "device=cpu", "tensorboard=false"])
    setting = SweepSetting("resolution", "tiny", None, 48)
    row = run_setting(setting, config, tmp_path / "results", speed_runs=1, speed_warmup=0, n_resamples=10)

    test = load_record(tmp_path / "results" / setting.name / "test")
    val = load_record(tmp_path / "results" / setting.name / "val")
    assert test.provenance["warp"] == val.provenance["warp"] == "tanh"
    root = ensure_synthface(tmp_path / "synth", fmt="lapa", **SYNTH)
    weights = run_folder(setting, config, tmp_path / "results") / "final.safetensors"
    evaluated = evaluate_checkpoint(weights, "lapa", root, "test", n_resamples=0, device="cpu")
    assert evaluated.provenance["warp"] == "tanh"
    np.testing.assert_array_equal(test.confusion_matrix(), evaluated.confusion_matrix())
    assert test.confusion_matrix().sum() > 0 and row["mean_f1"] == evaluated.mean_f1
    # the timing ran the model inside the warp too, and its record says so
    (speed,) = find_speed_records(tmp_path / "results" / setting.name / "speed")
    assert speed["warp"] == "tanh" and speed["params"] == test.provenance["num_params"] == row["params"]
    # the report's example predictions run inside the warp too (LaPa samples carry their landmarks)
    outputs = run_report(tmp_path / "results", tmp_path / "report", include_reported=False, examples=1, n_resamples=10)
    assert outputs.files.get("qualitative") and not any("qualitative" in note for note in outputs.skipped)
