"""Figure-1-style class-frequency plots (matplotlib, Agg backend; PNG + PDF)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

from lt_faceparse.atomic import atomic_save_figure

if TYPE_CHECKING:
    from lt_faceparse.analysis.frequency import FrequencyTable

BIN_SHADES = {"frequent": "#dbe9f6", "common": "#fdf1d6", "rare": "#f9d9d6"}


def _pyplot():
    import matplotlib  # lazy: matplotlib (~0.5 s) only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # lazy: after matplotlib.use('Agg'), only when a figure is drawn

    return plt


def _save(fig, stem: Path) -> list[Path]:
    """PNG + PDF, cropped to the drawing plus matplotlib's padding (measured once for both files, which
    halves the text layout of two ``bbox_inches="tight"`` saves); the PNG compressed fast (same pixels)."""
    plt = _pyplot()
    crop = fig.get_tightbbox(fig.canvas.get_renderer()).padded(plt.rcParams["savefig.pad_inches"])
    out = atomic_save_figure(fig, stem, dpi=150, png_compress_level=1, bbox_inches=crop)
    plt.close(fig)
    return out


def plot_class_frequencies(table: "FrequencyTable", stem: str | Path, *, log_scale: bool = False,
                           include_background: bool = False) -> list[Path]:
    """Bars of presence probability per class, sorted (head left, tail right), coloured with the
    taxonomy palette; background shading marks the frequent / common / rare bins and dashed lines
    their thresholds. Writes ``stem.png`` and ``stem.pdf``."""
    plt = _pyplot()
    frame = table.frame
    if not include_background:
        frame = frame[frame["kind"] != "background"]
    frame = frame.sort_values("presence_prob", ascending=False, kind="stable")
    palette = table.taxonomy.palette / 255.0
    x = np.arange(len(frame))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * len(frame) + 2), 3.8))
    start = 0
    for b, run in _runs(frame["bin"].tolist()):
        ax.axvspan(start - 0.5, start + run - 0.5, color=BIN_SHADES.get(b, "#eeeeee"), zorder=0, lw=0)
        ax.text(start + run / 2 - 0.5, 1.0, b, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                fontsize=8)
        start += run
    ax.bar(x, frame["presence_prob"], color=palette[frame["class_id"].to_numpy()], edgecolor="#333333",
           linewidth=0.6, zorder=2)
    for value in table.summary["thresholds"].values():
        ax.axhline(value, ls="--", lw=0.8, color="#666666", zorder=1)
    for xi in x[frame["presence_prob"].to_numpy() == 0]:  # invisible bars (and off a log axis)
        ax.text(xi, 0.01, "0", transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, frame["display_name"], rotation=60, ha="right", fontsize=8)
    ax.set_xlim(-0.5, len(frame) - 0.5)
    ax.set_ylabel("presence probability (share of images)")
    if log_scale:
        ax.set_yscale("log")
        floor = frame.loc[frame["presence_prob"] > 0, "presence_prob"].min()
        ax.set_ylim(max(floor / 2, 1e-4) if np.isfinite(floor) else 1e-4, 1.05)
    else:
        ax.set_ylim(0, 1.05)
    s = table.summary
    merge = "" if s.get("merge") is None else f" (merge: {s['merge']})"
    ax.set_title(f"{s['dataset']} {s['split']}{merge}, {s['num_images']} images; "
                 f"Gini image {s['gini_image']:.3f}, pixel {s['gini_pixel']:.3f}", fontsize=9, pad=14)
    return _save(fig, Path(stem))


def _runs(values: list[str]) -> list[tuple[str, int]]:
    runs: list[tuple[str, int]] = []
    for v in values:
        if runs and runs[-1][0] == v:
            runs[-1] = (v, runs[-1][1] + 1)
        else:
            runs.append((v, 1))
    return runs


def plot_preset_comparison(tables: Mapping[str, "FrequencyTable"], stem: str | Path, *,
                           log_scale: bool = False) -> list[Path]:
    """Grouped bars: presence probability of every foreground class under each merge preset,
    classes ordered by their presence under the first preset."""
    plt = _pyplot()
    presets = list(tables)
    first = tables[presets[0]].frame
    fg = first[first["kind"] != "background"].sort_values("presence_prob", ascending=False, kind="stable")
    ids = fg["class_id"].to_numpy()
    x = np.arange(len(ids))
    width = 0.8 / len(presets)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(ids) + 2), 3.8))
    colors = plt.get_cmap("tab10")
    for j, preset in enumerate(presets):
        vals = tables[preset].frame.set_index("class_id").loc[ids, "presence_prob"].to_numpy()
        ax.bar(x - 0.4 + width * (j + 0.5), vals, width, label=preset, color=colors(j), zorder=2)
    ax.set_xticks(x, fg["display_name"], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("presence probability (share of images)")
    if log_scale:
        ax.set_yscale("log")
    ax.legend(title="merge preset", fontsize=8)
    s = tables[presets[0]].summary
    ax.set_title(f"{s['dataset']} {s['split']}: class presence per merge preset", fontsize=9)
    return _save(fig, Path(stem))
