"""Long-tail analysis: plain vs remedy detection, comparisons, group CIs and paired Δ, tables, the
ΔF1-vs-presence figure, the README section, and the wiring into ``run_report``."""

import numpy as np
import pytest

from lt_faceparse.analysis.bins import assign_bins
from lt_faceparse.analysis.frequency import FrequencyTable, write_frequency_report
from lt_faceparse.metrics.per_image import PerImageStats
from lt_faceparse.longtail import spec
from lt_faceparse.records import build_record, head_tail_means, record_is_plain, save_record
from lt_faceparse.reporting.longtail import (
    analyse,
    class_groups,
    delta_panels,
    find_comparisons,
    longtail_delta_table,
    longtail_table,
)
from lt_faceparse.taxonomy import get_taxonomy

TAX = get_taxonomy("celebamask-hq")
N = 80
PRESENCE = {"skin": 1.0, "nose": 0.99, "neck": 0.95, "hair": 0.97, "l_eye": 0.96, "r_eye": 0.96, "l_brow": 0.97,
            "r_brow": 0.97, "u_lip": 0.98, "l_lip": 0.98, "cloth": 0.72, "l_ear": 0.62, "r_ear": 0.55,
            "mouth": 0.42, "ear_r": 0.26, "eye_g": 0.07, "hat": 0.06, "neck_l": 0.05, "background": 1.0}


def _gt(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    gt = np.zeros((N, TAX.num_classes), np.int64)
    for name, p in PRESENCE.items():
        i = TAX.id_of(name)
        present = rng.random(N) < max(p, 0.15 if name in ("eye_g", "hat", "neck_l") else p)
        gt[:, i] = np.where(present, rng.integers(40, 400, N), 0)
    return gt


def _record(gt: np.ndarray, head_hit: float, tail_hit: float, provenance: dict, seed: int = 1):
    """A record whose per-image counts come from per-image confusion matrices: a share of each class's
    pixels is found (``*_hit``), the rest goes to background, plus a few false positives."""
    rng = np.random.default_rng(seed)
    tail = set(TAX.accessory_ids)
    cms = np.zeros((N, TAX.num_classes, TAX.num_classes), np.int64)
    for n in range(N):
        for k in range(TAX.num_classes):
            hit = tail_hit if k in tail else head_hit
            found = int(gt[n, k] * min(1.0, max(0.0, rng.normal(hit, 0.05)))) if k else gt[n, k]
            cms[n, k, k] += found
            cms[n, k, 0] += gt[n, k] - found
            if k and gt[n, k]:
                cms[n, 0, k] += int(rng.integers(0, 10))
    stats = PerImageStats(cms.sum(2), cms.sum(1), np.einsum("nkk->nk", cms), np.arange(N),
                          tuple(f"{i:05d}" for i in range(N)))
    prov = {"dataset": "synthface-lt", "split": "test", "merge": "segface", "protocol": "input", "resolution": 64,
            "backbone": "m", **provenance}
    return build_record(cms.sum(0), TAX, prov, per_image=stats)


def _frequency() -> FrequencyTable:
    presence = np.array([PRESENCE[n] for n in TAX.names])
    text = lambda values: np.array(list(values), dtype=object)  # noqa: E731
    columns = {
        "class_id": np.arange(TAX.num_classes), "class_name": text(TAX.names),
        "images_with_class": (presence * 500).astype(int), "presence_prob": presence,
        "pixel_count": (presence * 1e5).astype(int), "pixel_share": presence / presence.sum(),
        "mean_area_when_present": presence / 10, "bin": text(assign_bins(presence)),
        "display_name": text(TAX.display_names), "kind": text(c.kind for c in TAX.classes)}
    summary = {"num_images": 500, "gini_image": 0.3, "gini_pixel": 0.7, "merge": "segface", "split": "train",
               "dataset": "synthface-lt", "taxonomy": TAX.name, "thresholds": {"rare_below": 0.3, "common_below": 0.9}}
    return FrequencyTable(columns, summary, TAX)


@pytest.fixture(scope="module")
def records():
    gt = _gt()
    plain = _record(gt, 0.85, 0.20, {"model": "segface", "run": "segface-m-r64"})
    focal = _record(gt, 0.84, 0.60, {"model": "segface", "remedy": "focal", "run": "segface-m-r64-focal",
                                     "longtail": _longtail(loss={"name": "focal", "gamma": 2.0}, sampler="uniform",
                                                           copy_paste=None)}, seed=2)
    tta = _record(gt, 0.86, 0.21, {"model": "segface", "posthoc": {"logit_adjust": None, "tta": "flip"},
                                   "run": "segface-m-r64"}, seed=3)
    fcn = _record(gt, 0.70, 0.10, {"model": "fcn", "run": "fcn-m-r64"}, seed=4)
    return {"plain": plain, "focal": focal, "tta": tta, "fcn": fcn}


def _longtail(**section) -> dict:
    """A ``longtail`` provenance entry as training writes it: the remedies' label and their settings."""
    return {"label": spec.remedy_label(section), **section}


def test_find_comparisons_picks_the_plain_reference(records):
    all_records = [records["focal"], records["tta"], records["plain"], records["fcn"]]
    comparisons, notes = find_comparisons(all_records, [records["plain"], records["fcn"]])
    assert not notes
    remedies, models = comparisons
    assert remedies.kind == "remedies" and remedies.reference is records["plain"]
    assert remedies.labels == ["focal", "flip TTA"]
    assert remedies.stem == "longtail_remedies_segface_m_64"
    assert models.kind == "models" and models.reference is records["plain"] and models.labels == ["fcn (m)"]
    # a second plain record of the same setting makes the reference ambiguous: not compared, said so
    twin = _record(_gt(), 0.8, 0.2, {"model": "segface", "run": "other"})
    comparisons, notes = find_comparisons([records["plain"], twin, records["focal"]])
    assert comparisons == [] and "2 plain records" in notes[0]
    # the model reference can be named
    comparisons, _ = find_comparisons([], [records["plain"], records["fcn"]], model_reference="fcn")
    assert comparisons[0].reference is records["fcn"]


def test_analysis_known_answers(records):
    freq = _frequency()
    comparisons, _ = find_comparisons([records["plain"], records["focal"], records["tta"]])
    a = analyse(comparisons[0], bins=freq.bins(), n_resamples=300, val_records={"segface-m-r64-focal": records["focal"]})
    groups = class_groups(TAX, freq.bins())
    assert list(groups) == ["head", "tail", "rare", "common", "frequent", "mean"]
    assert groups["tail"] == TAX.accessory_ids and set(groups["rare"]) == {TAX.id_of(n) for n in ("eye_g", "hat",
                                                                                                   "neck_l", "ear_r")}
    for i, r in enumerate(a.records):
        head, tail = head_tail_means(r, TAX)
        value, lo, hi = a.cis[i].groups["head"]
        assert value == pytest.approx(head) and lo <= value <= hi
        assert a.cis[i].groups["tail"][0] == pytest.approx(tail)
        assert a.cis[i].groups["mean"][0] == pytest.approx(r.mean_f1)
    focal = a.tests[0]
    d = focal.groups["tail"]
    assert d.delta == pytest.approx(head_tail_means(records["focal"], TAX)[1] - head_tail_means(records["plain"], TAX)[1])
    assert d.delta > 0.3 and d.significant and d.p_value < 0.01  # tail hit rate 0.2 -> 0.6
    assert abs(focal.groups["head"].delta) < 0.02
    assert not a.tests[1].groups["tail"].significant  # tta: the same quality on the tail
    assert a.val[0] is None and a.val[1]["tail"] == pytest.approx(head_tail_means(records["focal"], TAX)[1])

    table = longtail_table(a)
    assert [c.header for c in table.columns[:4]] == ["Method", "Remedy (parameters)", "Head F1", "95% CI"]
    assert table.rows[0]["method"] == "plain (reference)" and table.rows[1]["settings"] == "focal(γ=2)"
    assert table.rows[1]["tail"] == pytest.approx(a.cis[1].groups["tail"][0])
    delta = longtail_delta_table(a)
    assert delta.rows[0]["d_tail"].endswith("*") and delta.rows[0]["p_tail"] == pytest.approx(d.p_value)
    assert delta.rows[0]["ci_tail"] == (d.lower, d.upper)

    panels = delta_panels(a)
    assert len(panels) == 2 and panels[0].title.startswith("focal − plain")
    neck_l = TAX.id_of("neck_l")
    assert panels[0].delta[neck_l] == pytest.approx(focal.delta[neck_l])


def test_delta_figure_and_tables_are_written(records, tmp_path):
    from lt_faceparse.reporting.longtail import write_longtail

    comparisons, _ = find_comparisons([records["plain"], records["focal"], records["tta"]],
                                      [records["plain"], records["fcn"]])
    added = {}
    analyses = write_longtail(comparisons, frequency=_frequency(), tables_dir=tmp_path / "t", figures_dir=tmp_path / "f",
                              add=lambda name, paths: added.setdefault(name, []).extend(
                                  paths.values() if isinstance(paths, dict) else paths), n_resamples=100)
    assert len(analyses) == 2
    for stem in ("longtail_remedies_segface_m_64", "longtail_models"):
        for ext in ("md", "csv", "tex"):
            assert (tmp_path / "t" / f"{stem}.{ext}").stat().st_size > 0
            assert (tmp_path / "t" / f"{stem}_delta.{ext}").stat().st_size > 0
        for ext in ("png", "pdf", "caption.txt"):
            assert (tmp_path / "f" / f"{stem}_delta_vs_presence.{ext}").stat().st_size > 0
    caption = (tmp_path / "f" / "longtail_remedies_segface_m_64_delta_vs_presence.caption.txt").read_text()
    assert "paired-bootstrap 95% intervals" in caption and "training split" in caption and "80 images" in caption
    assert "\\toprule" in (tmp_path / "t" / "longtail_models.tex").read_text()
    csv = (tmp_path / "t" / "longtail_remedies_segface_m_64.csv").read_text().splitlines()
    assert csv[0].startswith("Method,Remedy (parameters),Head F1,95% CI,Tail F1")
    assert len(csv) == 4  # plain, focal, tta


def test_delta_figure_marks_significance():
    from lt_faceparse.reporting.figures import DeltaPanel, delta_vs_presence_figure

    presence = {i: 0.5 for i in TAX.foreground_ids}
    hat, skin = TAX.id_of("hat"), TAX.id_of("skin")
    panel = DeltaPanel("a − b", {hat: 0.2, skin: -0.01}, {hat: (0.1, 0.3), skin: (-0.05, 0.02)})
    fig = delta_vs_presence_figure(presence, [panel, panel, panel, panel], TAX)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 4 and visible[0].get_xscale() == "log"
    faces = [line.get_markerfacecolor() for line in visible[0].get_lines() if line.get_marker() not in (None, "None", "")]
    assert "white" in faces and any(f != "white" for f in faces)  # skin: CI includes 0 -> hollow; hat: filled
    texts = {t.get_text(): t.get_color() for t in visible[0].texts}
    assert texts[TAX[hat].display] == "#d62728" and texts[TAX[skin].display] == "0.3"


@pytest.mark.slow
def test_report_writes_the_longtail_pieces_and_readme_section(records, tmp_path):
    from lt_faceparse.reporting.readme import longtail_section, write_readme
    from lt_faceparse.reporting.report import main_records, run_report

    results = tmp_path / "results"
    for name, r in records.items():
        save_record(r, results / name / "test")
    # val records of plain and focal: val chooses focal
    for name in ("plain", "focal"):
        r = records[name]
        val = build_record(r.confusion_matrix(), TAX, r.provenance.replace(split="val"), per_image=r.per_image)
        save_record(val, results / name / "val")
    write_frequency_report(_frequency(), tmp_path / "freq")
    outputs = run_report(results, tmp_path / "out", freq=tmp_path / "freq", examples=0, n_resamples=200,
                         include_reported=False)
    assert [r.provenance.model for r in main_records(outputs.records)] == ["segface", "fcn"]
    assert all(record_is_plain(r) for r in main_records(outputs.records))
    assert {"longtail_table", "longtail_delta", "longtail_figure"} <= set(outputs.files)
    assert [a.comparison.kind for a in outputs.longtail] == ["models", "remedies"]
    # the flip-TTA record has its own leaderboard group, but the per-model figures are drawn once, for the
    # plainly scored models (a post-hoc group must not overwrite Figure 1 or add its own confusion matrix)
    figures = sorted(p.name for p in outputs.files["confusion"])
    assert figures == [f"confusion_{m}_m_64.{ext}" for m in ("fcn", "segface") for ext in ("caption.txt", "pdf", "png")]
    fig1 = (tmp_path / "out" / "figures" / "fig1_presence_vs_f1.caption.txt").read_text()
    assert "TTA" not in fig1 and [p.name for p in outputs.files["figure1"]].count("fig1_presence_vs_f1.png") == 1
    section = "\n".join(longtail_section(outputs))
    assert "## Long-tail remedies" in section
    assert "**Chosen on val**" in section and "focal, val tail" in section
    assert "**meets** the bar" in section  # tail +40 points, head about -1: the synthetic remedy passes
    write_readme(tmp_path / "out", outputs, {"command": "test"})
    readme = (tmp_path / "out" / "README.md").read_text()
    assert "## Long-tail remedies" in readme and "longtail_remedies_segface_m_64_delta_vs_presence" in readme


def test_readme_says_when_no_remedy_reaches_the_bar(records):
    from types import SimpleNamespace

    from lt_faceparse.reporting.readme import longtail_section

    comparisons, _ = find_comparisons([records["plain"], records["tta"]], [records["plain"], records["fcn"]])
    outputs = SimpleNamespace(longtail=[analyse(c, n_resamples=100) for c in comparisons])
    section = "\n".join(longtail_section(outputs))
    assert "**No remedy reached +10 tail points (paired bootstrap p < 0.05) with at most 1 head point lost**" in section
    assert "No choice on val" in section and "flip TTA" in section and "Holm" in section
    outputs = SimpleNamespace(longtail=[analyse(comparisons[1], n_resamples=50)])
    section = "\n".join(longtail_section(outputs))
    assert "No long-tail remedy was trained" in section and "tables/longtail_models.md" in section
