"""The benchmark's rarity stage without training: where it reads its records and what it does when they are absent."""

from lt_faceparse.experiments.benchmark import plan_settings, rarity_control_config
from lt_faceparse.experiments.plans import QUICK
from lt_faceparse.experiments.rarity_stage import run_rarity_stage
from lt_faceparse.experiments.sweep import config_fingerprint
from lt_faceparse.reporting.rarity import CONTROL_PRESENCE


def test_reused_results_without_control_records_skip_the_report_with_a_note(tmp_path):
    jobs = plan_settings(QUICK, tmp_path / "synth")
    out = tmp_path / "reports"
    main = f"segface-timm_mobilenetv3_large_100-r{QUICK.resolution}"
    for split in ("val", "test"):  # the committed results hold the main model's records, not the control's
        (out / "results" / main / split).mkdir(parents=True)
        (out / "results" / main / split / "record.json").write_text("{}")
    messages: list[str] = []
    skipped = run_rarity_stage(QUICK, jobs, tmp_path / "synth", None, tmp_path / "runs", out, log=messages.append)
    assert len(skipped) == 1 and skipped == messages
    assert skipped[0].startswith(f"rarity: report not written: {out / 'rarity' / 'control' / 'val' / 'record.json'}"
                                 " is missing (and ")
    assert "without --reuse-results" in skipped[0]
    assert not (out / "tables").exists() and not (out / "rarity").exists()


def test_control_config_is_the_main_setting_on_the_control_data(tmp_path, monkeypatch):
    generated = []

    def fake_generate(plan, cache):  # records the presence the control's data is drawn with, generates nothing
        generated.append(dict(plan.presence))
        return tmp_path / "synth-control"

    monkeypatch.setattr("lt_faceparse.experiments.benchmark.generate_data", fake_generate)
    cfg = rarity_control_config(QUICK, tmp_path / "cache", tmp_path / "runs")
    main_cfg = plan_settings(QUICK, tmp_path / "synth-control")[0][1]
    assert generated == [dict(CONTROL_PRESENCE)]
    assert cfg["model"] == main_cfg["model"] and cfg["optim"] == main_cfg["optim"]
    assert cfg["data"]["root"] == str(tmp_path / "synth-control") and cfg["resume"] == "auto"
    assert cfg["out"] == str(tmp_path / "runs" / "rarity_control" / f"run-{config_fingerprint(cfg)}")
