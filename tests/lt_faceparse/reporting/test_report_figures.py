import numpy as np
import pytest

from lt_faceparse.reporting.figures import (
    ResolutionCurve,
    Series,
    class_colors,
    confusion_figure,
    f1_vs_presence_figure,
    fps_resolution_figure,
    frequency_f1_figure,
    legend_figure,
    qualitative_figure,
    row_normalise,
    save_figure,
    tail_destinations,
)
from lt_faceparse.taxonomy import get_taxonomy

TAX = get_taxonomy("celebamask-hq")


def _presence() -> dict[int, float]:
    return {i: 1.0 / (1 + 0.3 * i) for i in TAX.foreground_ids}


def _series() -> list[Series]:
    a = {i: 0.9 - 0.02 * i for i in TAX.foreground_ids}
    b = {i: 0.8 - 0.01 * i for i in TAX.foreground_ids}
    b[TAX.id_of("neck_l")] = float("nan")  # undefined class: skipped, not plotted as 0
    ci = {i: (v - 0.05, v + 0.03) for i, v in a.items()}
    return [Series("SegFace", a, ci), Series("FCN", b)]


def _assert_written(paths, caption_words):
    for ext in ("png", "pdf"):
        assert paths[ext].stat().st_size > 1000
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["pdf"].read_bytes()[:5] == b"%PDF-"
    caption = paths["caption"].read_text()
    for word in caption_words:
        assert word in caption


def test_frequency_and_presence_figures_write_png_pdf_caption(tmp_path):
    fig = frequency_f1_figure(_presence(), _series(), TAX, title="t")
    ax = fig.axes[0]
    # bars sorted by presence, descending, and in class colours
    heights = [p.get_height() for p in ax.patches]
    assert heights == sorted(heights, reverse=True) and len(heights) == len(TAX.foreground_ids)
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == TAX[1].display  # id 1 has the highest presence here
    assert len(ax.get_lines()) == 2
    _assert_written(save_figure(fig, tmp_path, "fig1", "data: X, split: test"), ["split: test"])

    fig = f1_vs_presence_figure(_presence(), _series(), TAX)
    assert fig.axes[0].get_xscale() == "log"
    _assert_written(save_figure(fig, tmp_path, "f1_presence", "caption"), ["caption"])


def test_confusion_row_normalisation_and_tail_destinations(tmp_path):
    k = TAX.num_classes
    cm = np.eye(k, dtype=np.int64) * 100
    necklace, neck, cloth = TAX.id_of("neck_l"), TAX.id_of("neck"), TAX.id_of("cloth")
    cm[necklace] = 0
    cm[necklace, neck], cm[necklace, cloth], cm[necklace, necklace] = 60, 30, 10
    cm[TAX.id_of("hat")] = 0  # a class absent from the ground truth: an all-zero row
    norm = row_normalise(cm)
    assert norm[necklace, neck] == pytest.approx(0.6)
    assert norm[TAX.id_of("hat")].sum() == 0
    np.testing.assert_allclose(norm.sum(1)[norm.sum(1) > 0], 1.0)
    dest = tail_destinations(cm, TAX, top=2)
    assert dest["neck_l"] == [("neck", pytest.approx(0.6)), ("cloth", pytest.approx(0.3))]
    assert "hat" not in dest
    fig = confusion_figure(cm, TAX)
    _assert_written(save_figure(fig, tmp_path, "confusion", "rows = ground truth"), ["ground truth"])


def test_qualitative_grid_shapes(tmp_path):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in range(2)]
    labels = [np.full((32, 32), 2, dtype=np.uint8) for _ in range(2)]
    labels[0][10:14, 20:24] = TAX.id_of("ear_r")  # a tail class -> crop columns appear
    preds = {"SegFace": labels, "FCN": [np.zeros((32, 32), np.uint8)] * 2}
    fig = qualitative_figure(images, labels, preds, TAX, names=["a", "b"])
    assert len(fig.axes) == 2 * (2 + 2 + 3)
    _assert_written(save_figure(fig, tmp_path, "qual", "q"), ["q"])
    _assert_written(save_figure(legend_figure(TAX), tmp_path, "legend", "legend"), ["legend"])


def test_fps_resolution_and_colors(tmp_path):
    ours = ResolutionCurve("ours (CPU)", [64, 96, 128], [30.0, 20.0, 12.0])
    paper = ResolutionCurve("paper (A6000)", [64, 96, 128], [54.56, 54.11, 45.77])
    fig = fps_resolution_figure([ours, paper], [ResolutionCurve("ours", [64, 96, 128], [60.0, 65.0, 70.0])])
    assert len(fig.axes) == 2
    assert list(fig.axes[0].get_lines()[1].get_ydata()) == [54.56, 54.11, 45.77]
    _assert_written(save_figure(fig, tmp_path, "fps", "fps"), ["fps"])
    colours = class_colors(TAX, [0, 2])
    assert colours[0] == (64 / 255,) * 3  # black background lifted to grey
    assert colours[1] == (204 / 255, 0.0, 0.0)


def test_method_colours_stay_distinct_past_ten_methods():
    from lt_faceparse.reporting.figures import method_colors

    for n in (3, 10, 11, 20):
        assert len({tuple(round(c, 4) for c in rgb) for rgb in method_colors(n)}) == n
