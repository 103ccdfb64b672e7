"""Remedies as a sweep axis, the shipped remedy set, and the leaderboard: post-hoc rows kept apart,
method names stating each remedy, the remedy Δ view against plain with head/tail tests."""

from __future__ import annotations

import numpy as np
import pytest

from lt_faceparse.engine.config import load_config
from lt_faceparse.engine.remedies import resolve_remedies, resolve_remedy, shipped_remedies
from lt_faceparse.experiments.sweep import SweepSetting, config_fingerprint, plan_sweep
from lt_faceparse.metrics.bootstrap import paired_bootstrap, paired_bootstrap_subsets
from lt_faceparse.metrics.per_image import PerImageStats
from lt_faceparse.records import build_record, protocol_of
from lt_faceparse.reporting.leaderboard import build_leaderboard, write_leaderboard
from lt_faceparse.taxonomy import get_taxonomy

TAX = get_taxonomy("celebamask-hq")
K = TAX.num_classes
HAT, NECKLACE, NECK, SKIN = (TAX.id_of(n) for n in ("hat", "neck_l", "neck", "skin"))
PROTO = {"dataset": "synthface-lt", "split": "test", "merge": "segface", "protocol": "input",
         "checkpoint_rule": "last epoch", "pretraining": "none", "resolution": 64, "model": "segface",
         "backbone": "mobilenet"}


def _record(hat_hits: list[int], skin_misses: list[int], **prov):
    """Images of 100 px per class; ``hat_hits[i]`` of image i's 100 hat pixels predicted right (the rest as
    background), ``skin_misses[i]`` skin pixels predicted as neck."""
    cms = []
    for hits, misses in zip(hat_hits, skin_misses):
        cm = np.eye(K, dtype=np.int64) * 100
        cm[HAT, HAT] = hits
        cm[HAT, TAX.id_of("background")] = 100 - hits
        cm[SKIN, SKIN] -= misses
        cm[SKIN, NECK] += misses
        cms.append(cm)
    stats = PerImageStats(gt=np.stack([c.sum(1) for c in cms]), pred=np.stack([c.sum(0) for c in cms]),
                          inter=np.stack([np.diagonal(c) for c in cms]), image_ids=np.arange(len(cms)),
                          names=tuple(f"img{i}" for i in range(len(cms))))
    return build_record(sum(cms), TAX, {**PROTO, **prov}, per_image=stats)


def test_shipped_remedy_set_validates_and_resolves():
    names = shipped_remedies()
    assert {"focal", "logit_adjusted", "seesaw", "weighted_ce", "repeat_factor", "copy_paste"} <= set(names)
    for name in names:
        config = load_config(f"longtail/{name}")  # each trains on its own
        assert config["model"]["name"] == "segface" and config["data"]["synthetic"]
        remedy, section = resolve_remedy(name)
        assert remedy == name and section == config["longtail"]
        assert config["out"].endswith(name)
    base = load_config("longtail/base")
    assert base["longtail"] == resolve_remedy("plain")[1]
    assert [n for n, _ in resolve_remedies(["all"])] == ["plain", *names]
    with pytest.raises(FileNotFoundError, match="no such remedy"):
        resolve_remedy("nonsense")


def test_remedies_are_a_sweep_axis(tmp_path):
    config = load_config("longtail/base")
    plan = plan_sweep(config, remedies=["plain", "focal"])
    assert [s.name for s, _ in plan] == ["segface-timm_mobilenetv3_large_100-r64",
                                         "segface-timm_mobilenetv3_large_100-r64-focal"]
    assert {s.axis for s, _ in plan} == {"remedy"}
    assert plan[0][1]["longtail"] == config["longtail"]
    assert plan[1][1]["longtail"] == resolve_remedy("focal")[1]
    assert config_fingerprint(plan[0][1]) != config_fingerprint(plan[1][1])
    grid = plan_sweep(config, resolutions=[32, 64], remedies=["plain", "seesaw"])
    assert {s.axis for s, _ in grid} == {"grid"} and len(grid) == 4
    own = tmp_path / "mine.yaml"
    own.write_text("longtail:\n  loss: {name: focal, gamma: 1.0}\n")
    (setting, cfg), = plan_sweep(config, remedies=[str(own)])
    assert setting.remedy == "mine" and cfg["longtail"]["loss"] == {"name": "focal", "gamma": 1.0}
    # names of settings without a remedy do not change, nor do fingerprints of configs without one
    assert SweepSetting("resolution", "segface", "mobilenet", 64).name == "segface-mobilenet-r64"
    no_section = {k: v for k, v in config.items() if k != "longtail"}
    assert config_fingerprint(config) == config_fingerprint(no_section)


def test_paired_bootstrap_of_class_set_means():
    plain = _record([0, 0, 0, 0], [0, 0, 0, 0])
    better = _record([60, 60, 60, 60], [10, 10, 10, 10])
    tail = list(TAX.accessory_ids)
    head = [i for i in TAX.foreground_ids if i not in tail]
    sets = paired_bootstrap_subsets(plain, better, {"Head": head, "Tail": tail}, n_resamples=200)
    # hat F1: 0 -> 2*240/(400+240) = 0.75 (one of 4 tail classes); skin F1: 1 -> 2*360/(400+360)
    assert sets["Tail"].delta == pytest.approx(0.75 / 4)
    skin = 2 * 360 / 760
    neck = 2 * 400 / (400 + 440)
    assert sets["Head"].delta == pytest.approx((skin - 1 + neck - 1) / len(head))
    assert sets["Tail"].lower > 0 and sets["Head"].upper < 0 and sets["Tail"].p_value < 0.05
    full = paired_bootstrap(plain, better, TAX, n_resamples=200)
    assert full.delta[HAT] == pytest.approx(0.75)


def test_leaderboard_names_remedies_keeps_post_hoc_apart_and_compares_remedies_with_plain(tmp_path):
    plain = _record([0, 10, 0, 20], [0, 0, 0, 0])
    focal = _record([50, 60, 40, 70], [5, 5, 5, 5], longtail={"label": "focal(γ=2)"})
    la = _record([70, 80, 60, 90], [20, 20, 20, 20], longtail={"label": "LA(τ=1)"})
    tta = _record([0, 10, 0, 20], [0, 0, 0, 0], posthoc={"logit_adjust": None, "tta": "flip"})
    other = _record([0, 0, 0, 0], [0, 0, 0, 0], resolution=32)  # another architecture setting: no Δ partner
    board = build_leaderboard([plain, focal, la, tta, other], n_resamples=200)
    assert len(board) == 2  # flip TTA changes the protocol: its own group
    main, posthoc = board.groups
    assert protocol_of(tta)["posthoc"] == "flip TTA" and protocol_of(plain)["posthoc"] == "none"
    assert "post-hoc: flip TTA" in posthoc.table.title and main.slug == "synthface_lt-celebamask_hq-test-segface-input"
    assert posthoc.slug.endswith("-flip_tta")
    labels = [row["method"] for row in main.table.rows]
    assert "segface (mobilenet) @64 +focal(γ=2)" in labels and "segface (mobilenet) @64 +LA(τ=1)" in labels
    assert posthoc.table.rows[0]["method"] == "segface (mobilenet) @64 +flip TTA"
    (delta,) = main.remedy_deltas
    assert delta.title.startswith("Long-tail remedies vs segface (mobilenet) @64 —")
    rows = {r["method"]: r for r in delta.rows}
    assert set(rows) == {"segface (mobilenet) @64 +focal(γ=2)", "segface (mobilenet) @64 +LA(τ=1)"}
    focal_row = rows["segface (mobilenet) @64 +focal(γ=2)"]
    assert focal_row["d_set_Tail"].endswith("*") and focal_row["d_set_Tail"].startswith("+")
    assert focal_row["d_set_Head"].startswith("-") and focal_row["p_set_Tail"] < 0.05
    assert focal_row[f"d_{HAT}"].startswith("+")
    headers = [c.header for c in delta.columns]
    assert "Δ Tail F1" in headers and "p (Δ Head)" in headers and "95% CI (Δ Tail)" in headers
    files = {p.name for p in write_leaderboard(board, tmp_path)}
    assert {"remedies-synthface_lt-celebamask_hq-test-segface-input-0.md",
            "remedies-synthface_lt-celebamask_hq-test-segface-input-0.tex"} <= files
    tex = (tmp_path / "remedies-synthface_lt-celebamask_hq-test-segface-input-0.tex").read_text()
    assert r"$\gamma$" in tex and r"$\tau$" in tex
    mixed = build_leaderboard([plain, tta], mixed=True, remedies=False)
    (group,) = mixed.groups
    assert "Post-hoc" in [c.header for c in group.table.columns] and not group.remedy_deltas
    assert any("posthoc (flip TTA, none)" in note for note in group.notes)


def test_backbone_and_resolution_tables_leave_remedy_rows_out():
    from lt_faceparse.reporting.sweep_tables import plain_rows, table_2b

    row = {"model": "segface", "backbone": "mobilenet", "resolution": 64, "dataset": "synthface-lt", "mean_f1": 0.3,
           "device": "cpu"}
    rows = [row, {**row, "remedy": "plain", "resolution": 32}, {**row, "remedy": "focal", "mean_f1": 0.9}]
    assert plain_rows(rows) == rows[:2]
    table = table_2b(rows, backbone="mobilenet")
    ours = [r for r in table.rows if r["source"].startswith("ours")]
    assert [r["res"] for r in ours] == [32, 64] and all(r["mean_f1"] == pytest.approx(0.3) for r in ours)


@pytest.mark.slow
def test_sweep_command_runs_remedies_and_the_leaderboard_compares_them(tmp_path, capsys):
    from lt_faceparse.cli import main as cli_main
    from lt_faceparse.engine.config import dump_config
    from lt_faceparse.reporting.sweep_rows import find_sweep_rows

    config = load_config("synth_tiny", ["out=/unused"])
    config["data"].update(root=str(tmp_path / "synth"), resolution=32,
                          synthetic={"num_images": 40, "size": 32, "seed": 2, "splits": [0.6, 0.2, 0.2]})
    config["optim"].update(epochs=2, milestones=[2])
    config["data"]["val_split"] = None  # the sweep scores val itself; no second val record in the run folder
    (tmp_path / "tiny.yaml").write_text(dump_config(config))
    (tmp_path / "la.yaml").write_text("longtail:\n  loss: {name: logit_adjusted, tau: 1.0}\n")
    assert cli_main(["sweep", "--config", str(tmp_path / "tiny.yaml"), "--remedies", f"plain,{tmp_path / 'la.yaml'}",
                     "--split", "val", "--speed-runs", "1", "--out", str(tmp_path / "sweep")]) == 0
    rows = {r["name"]: r for r in find_sweep_rows(tmp_path / "sweep")}
    assert set(rows) == {"tiny-default-r32", "tiny-default-r32-la"}
    assert rows["tiny-default-r32-la"]["remedy"] == "la" and rows["tiny-default-r32-la"]["longtail"] == "LA(τ=1)"
    assert rows["tiny-default-r32"]["longtail"] == "plain" and rows["tiny-default-r32"]["split"] == "val"
    assert cli_main(["leaderboard", "--results", str(tmp_path / "sweep"), "--out", str(tmp_path / "board")]) == 0
    (remedies,) = (tmp_path / "board").glob("remedies-*.md")
    text = remedies.read_text()
    assert "Long-tail remedies vs tiny @32" in text and "Δ Tail F1" in text and "tiny @32 +LA(τ=1)" in text
    assert "tiny @32 +LA(τ=1)" in (tmp_path / "board" / "leaderboard.md").read_text()
