"""Figure-1-style class-frequency plots (matplotlib figures without pyplot, Agg canvas; PNG + PDF)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from lt_faceparse.atomic import FIGURE_FORMATS, atomic_save_figure

if TYPE_CHECKING:
    from lt_faceparse.analysis.frequency import FrequencyTable

BIN_SHADES = {"frequent": "#dbe9f6", "common": "#fdf1d6", "rare": "#f9d9d6"}


def load_figure_libraries() -> None:
    """Import what drawing and saving a figure needs (matplotlib, its Agg canvas and PDF backend;
    about 0.4 s), e.g. while other processes compute the figure's data."""
    import matplotlib.backends.backend_agg  # noqa: F401  # lazy: only when a figure is drawn
    import matplotlib.backends.backend_pdf  # noqa: F401  # lazy: only when a figure is drawn
    import matplotlib.figure  # noqa: F401  # lazy: only when a figure is drawn


def _new_figure(width: float, height: float) -> tuple[Any, Any]:
    """A figure with one axes on an Agg canvas (no pyplot: no global figure registry to close)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: only when a figure is drawn
    from matplotlib.figure import Figure  # lazy: only when a figure is drawn

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig, fig.subplots()


def _save(fig: Any, stem: Path, formats: Sequence[str]) -> list[Path]:
    """PNG + PDF (or those of ``formats``), cropped to the drawing plus matplotlib's padding (measured
    once for both files, which halves the text layout of two ``bbox_inches="tight"`` saves); the PNG
    compressed fast (same pixels)."""
    import matplotlib  # lazy: only when a figure is drawn

    crop = fig.get_tightbbox(fig.canvas.get_renderer()).padded(matplotlib.rcParams["savefig.pad_inches"])
    return atomic_save_figure(fig, stem, dpi=150, png_compress_level=1, bbox_inches=crop, formats=formats)


def plot_class_frequencies(table: "FrequencyTable", stem: str | Path, *, log_scale: bool = False,
                           include_background: bool = False, formats: Sequence[str] = FIGURE_FORMATS) -> list[Path]:
    """Bars of presence probability per class, sorted (head left, tail right), coloured with the
    taxonomy palette; background shading marks the frequent / common / rare bins and dashed lines
    their thresholds. Writes ``stem.png`` and ``stem.pdf`` (those of ``formats``)."""
    cols = table.columns
    rows = np.arange(len(cols["class_id"])) if include_background else np.flatnonzero(cols["kind"] != "background")
    rows = rows[np.argsort(-cols["presence_prob"][rows], kind="stable")]  # head left, tail right
    presence = cols["presence_prob"][rows]
    palette = table.taxonomy.palette / 255.0
    x = np.arange(len(rows))
    fig, ax = _new_figure(max(6.0, 0.45 * len(rows) + 2), 3.8)
    start = 0
    for b, run in _runs(cols["bin"][rows].tolist()):
        ax.axvspan(start - 0.5, start + run - 0.5, color=BIN_SHADES.get(b, "#eeeeee"), zorder=0, lw=0)
        ax.text(start + run / 2 - 0.5, 1.0, b, transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                fontsize=8)
        start += run
    ax.bar(x, presence, color=palette[cols["class_id"][rows]], edgecolor="#333333", linewidth=0.6, zorder=2)
    for value in table.summary["thresholds"].values():
        ax.axhline(value, ls="--", lw=0.8, color="#666666", zorder=1)
    for xi in x[presence == 0]:  # invisible bars (and off a log axis)
        ax.text(xi, 0.01, "0", transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=8)
    ax.set_xticks(x, cols["display_name"][rows].tolist(), rotation=60, ha="right", fontsize=8)
    ax.set_xlim(-0.5, len(rows) - 0.5)
    ax.set_ylabel("presence probability (share of images)")
    if log_scale:
        ax.set_yscale("log")
        floor = presence[presence > 0].min() if (presence > 0).any() else np.nan
        ax.set_ylim(max(floor / 2, 1e-4) if np.isfinite(floor) else 1e-4, 1.05)
    else:
        ax.set_ylim(0, 1.05)
    s = table.summary
    merge = "" if s.get("merge") is None else f" (merge: {s['merge']})"
    ax.set_title(f"{s['dataset']} {s['split']}{merge}, {s['num_images']} images; "
                 f"Gini image {s['gini_image']:.3f}, pixel {s['gini_pixel']:.3f}", fontsize=9, pad=14)
    return _save(fig, Path(stem), formats)


def _runs(values: list[str]) -> list[tuple[str, int]]:
    runs: list[tuple[str, int]] = []
    for v in values:
        if runs and runs[-1][0] == v:
            runs[-1] = (v, runs[-1][1] + 1)
        else:
            runs.append((v, 1))
    return runs


def plot_preset_comparison(tables: Mapping[str, "FrequencyTable"], stem: str | Path, *,
                           log_scale: bool = False, formats: Sequence[str] = FIGURE_FORMATS) -> list[Path]:
    """Grouped bars: presence probability of every foreground class under each merge preset,
    classes ordered by their presence under the first preset."""
    import matplotlib  # lazy: only when a figure is drawn

    presets = list(tables)
    first = tables[presets[0]].columns
    rows = np.flatnonzero(first["kind"] != "background")
    rows = rows[np.argsort(-first["presence_prob"][rows], kind="stable")]  # by presence under the first preset
    x = np.arange(len(rows))
    width = 0.8 / len(presets)
    fig, ax = _new_figure(max(6.0, 0.55 * len(rows) + 2), 3.8)
    colors = matplotlib.colormaps["tab10"]
    for j, preset in enumerate(presets):
        vals = _presence_by_id(tables[preset])[first["class_id"][rows]]
        ax.bar(x - 0.4 + width * (j + 0.5), vals, width, label=preset, color=colors(j), zorder=2)
    ax.set_xticks(x, first["display_name"][rows].tolist(), rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("presence probability (share of images)")
    if log_scale:
        ax.set_yscale("log")
    ax.legend(title="merge preset", fontsize=8)
    s = tables[presets[0]].summary
    ax.set_title(f"{s['dataset']} {s['split']}: class presence per merge preset", fontsize=9)
    return _save(fig, Path(stem), formats)


def _presence_by_id(table: "FrequencyTable") -> np.ndarray:
    """Presence probability indexed by class id."""
    out = np.full(int(table.columns["class_id"].max()) + 1, np.nan)
    out[table.columns["class_id"]] = table.columns["presence_prob"]
    return out
