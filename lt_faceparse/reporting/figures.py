"""Paper-style figures: each one a function from plain data to a matplotlib figure, saved as PNG,
PDF and a caption file (``<stem>.caption.txt``) stating data, split, protocol and model.

Classes are drawn in their taxonomy colours (the palette every face-parsing tool uses); methods,
which have no palette, get seaborn's colour-blind palette and distinct markers and line styles so
the figures stay readable in black-and-white print.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from lt_faceparse.atomic import atomic_save_figure, atomic_write_text  # noqa: E402
from lt_faceparse.taxonomy import Taxonomy  # noqa: E402

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "figure.dpi": 100,
    "savefig.dpi": 200,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@dataclass(frozen=True)
class Series:
    """One method's per-class values (class id -> fraction), optional (lower, upper) intervals."""

    label: str
    values: Mapping[int, float]
    intervals: Mapping[int, tuple[float, float]] | None = None


def method_colors(n: int) -> list:
    import seaborn as sns  # lazy: seaborn (imports matplotlib) only when a figure is drawn

    # the colour-blind palette has 10 colours and repeats them after that: more methods get tab20's 20
    return list(sns.color_palette("colorblind" if n <= 10 else "tab20", max(n, 1)))


def class_colors(taxonomy: Taxonomy, ids: Sequence[int]) -> list[tuple[float, float, float]]:
    """Palette colours in 0..1; pure black (the background's) is lifted to dark grey to stay visible."""
    out = []
    for i in ids:
        r, g, b = (int(v) for v in taxonomy.palette[i])
        if (r, g, b) == (0, 0, 0):
            r = g = b = 64
        out.append((r / 255, g / 255, b / 255))
    return out


def save_figure(fig: "plt.Figure", out_dir: str | Path, stem: str, caption: str) -> dict[str, Path]:
    """Write ``stem.png``, ``stem.pdf`` (atomically) and ``stem.caption.txt``; close the figure."""
    out_dir = Path(out_dir)
    png, pdf = atomic_save_figure(fig, out_dir / stem)
    paths = {"png": png, "pdf": pdf}
    paths["caption"] = atomic_write_text(out_dir / f"{stem}.caption.txt", caption.strip() + "\n")
    plt.close(fig)
    return paths


def _finite(value: float | None) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


# ---- Figure 1: presence probability (bars) with per-class F1 (lines) -------------------------------

def frequency_f1_figure(presence: Mapping[int, float], series: Sequence[Series], taxonomy: Taxonomy,
                        *, title: str = "") -> "plt.Figure":
    """SegFace Figure 1 done properly: foreground classes sorted by presence probability (bars in
    class colours, left axis) and each method's per-class F1 (lines, same 0-1 axis)."""
    ids = sorted((i for i in taxonomy.foreground_ids if i in presence), key=lambda i: (-presence[i], i))
    x = np.arange(len(ids))
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(max(6.0, 0.42 * len(ids) + 2), 3.4))
        ax.bar(x, [presence[i] for i in ids], color=class_colors(taxonomy, ids), edgecolor="black",
               linewidth=0.5, alpha=0.55, label="presence probability (train)")
        colors = method_colors(len(series))
        for k, s in enumerate(series):
            y = [s.values[i] if _finite(s.values.get(i)) else np.nan for i in ids]
            ax.plot(x, y, marker=MARKERS[k % len(MARKERS)], linestyle=LINESTYLES[k % len(LINESTYLES)],
                    color=colors[k], linewidth=1.4, markersize=4, label=f"F1: {s.label}")
        ax.set_xticks(x, [taxonomy[i].display for i in ids], rotation=55, ha="right")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("presence probability / F1")
        ax.grid(axis="y", linewidth=0.3, alpha=0.6)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        if title:
            ax.set_title(title)
        fig.tight_layout()
    return fig


# ---- per-class F1 against log presence with CI bars ------------------------------------------------

def f1_vs_presence_figure(presence: Mapping[int, float], series: Sequence[Series], taxonomy: Taxonomy,
                          *, title: str = "") -> "plt.Figure":
    """Per-class F1 (y, percent) against presence probability (x, log scale), with bootstrap 95%
    intervals as error bars where the records carry them; class names annotate the first method."""
    ids = [i for i in taxonomy.foreground_ids if _finite(presence.get(i)) and presence[i] > 0]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        colors = method_colors(len(series))
        for k, s in enumerate(series):
            xs, ys, lo, hi = [], [], [], []
            for i in ids:
                v = s.values.get(i)
                if not _finite(v):
                    continue
                xs.append(presence[i])
                ys.append(100 * v)
                interval = (s.intervals or {}).get(i)
                if interval and _finite(interval[0]) and _finite(interval[1]):
                    lo.append(max(0.0, 100 * (v - interval[0])))
                    hi.append(max(0.0, 100 * (interval[1] - v)))
                else:
                    lo.append(0.0)
                    hi.append(0.0)
            # small horizontal jitter (multiplicative, log axis) keeps overlapping methods apart
            jitter = 1.0 + 0.04 * (k - (len(series) - 1) / 2)
            ax.errorbar(np.asarray(xs) * jitter, ys, yerr=[lo, hi], fmt=MARKERS[k % len(MARKERS)],
                        color=colors[k], ecolor=colors[k], elinewidth=0.9, capsize=2, markersize=4,
                        label=s.label)
        for i in ids:  # class names next to the highest point of each class
            values = [s.values[i] for s in series if _finite(s.values.get(i))]
            if values:
                ax.annotate(taxonomy[i].display, (presence[i], 100 * max(values)), fontsize=6.5,
                            xytext=(3, 3), textcoords="offset points", color="0.25")
        ax.set_xscale("log")
        ax.set_xlabel("presence probability (fraction of training images with the class, log scale)")
        ax.set_ylabel("F1 (%)")
        ax.set_ylim(-2, 102)
        ax.grid(linewidth=0.3, alpha=0.6, which="both")
        ax.legend(loc="best", frameon=True, framealpha=0.9)
        if title:
            ax.set_title(title)
        fig.tight_layout()
    return fig


# ---- confusion heatmap ----------------------------------------------------------------------------

def row_normalise(confusion: np.ndarray) -> np.ndarray:
    """Rows divided by their sums (rows = ground truth); empty rows stay 0."""
    confusion = np.asarray(confusion, dtype=np.float64)
    sums = confusion.sum(1, keepdims=True)
    return np.divide(confusion, sums, out=np.zeros_like(confusion), where=sums > 0)


def confusion_figure(confusion: np.ndarray, taxonomy: Taxonomy, *, highlight: Sequence[int] | None = None,
                     title: str = "") -> "plt.Figure":
    """Row-normalised confusion heatmap (rows = ground truth, columns = prediction) in the paper's
    class order with background last. Rows of ``highlight`` classes (default: accessories, the
    tail) are framed and every cell of theirs above 1% is printed, showing where tail pixels go."""
    import seaborn as sns  # lazy: seaborn (imports matplotlib) only when a figure is drawn

    highlight = list(taxonomy.accessory_ids if highlight is None else highlight)
    order = list(taxonomy.display_order) + list(taxonomy.background_ids)
    norm = row_normalise(np.asarray(confusion))[np.ix_(order, order)]
    names = [taxonomy[i].display for i in order]
    k = len(order)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(0.36 * k + 2.6, 0.36 * k + 1.8))
        sns.heatmap(100 * norm, ax=ax, cmap="Greys", vmin=0, vmax=100, square=True, linewidths=0.2,
                    linecolor="0.85", cbar_kws={"label": "% of the row's ground-truth pixels", "shrink": 0.7},
                    xticklabels=names, yticklabels=names)
        for r, cls in enumerate(order):
            if cls not in highlight:
                continue
            ax.add_patch(plt.Rectangle((0, r), k, 1, fill=False, edgecolor="#d62728", linewidth=1.6))
            for c in range(k):
                if norm[r, c] >= 0.01:
                    ax.text(c + 0.5, r + 0.5, f"{100 * norm[r, c]:.0f}", ha="center", va="center", fontsize=5.5,
                            color="white" if norm[r, c] > 0.5 else "#d62728")
        for tick in ax.get_yticklabels():
            if taxonomy.id_of(tick.get_text()) in highlight:
                tick.set_color("#d62728")
                tick.set_fontweight("bold")
        ax.set_xlabel("predicted class")
        ax.set_ylabel("ground-truth class")
        ax.tick_params(axis="x", rotation=60)
        if title:
            ax.set_title(title)
        fig.tight_layout()
    return fig


def tail_destinations(confusion: np.ndarray, taxonomy: Taxonomy, top: int = 3) -> dict[str, list[tuple[str, float]]]:
    """For each accessory class, where its ground-truth pixels go: the ``top`` predicted classes
    and their share of the row (the numbers behind the heatmap's highlighted rows)."""
    norm = row_normalise(confusion)
    out = {}
    for cls in taxonomy.accessory_ids:
        if np.asarray(confusion)[cls].sum() == 0:
            continue
        order = np.argsort(-norm[cls], kind="stable")[:top]
        out[taxonomy[cls].name] = [(taxonomy[int(j)].name, float(norm[cls, j])) for j in order]
    return out


# ---- qualitative grid -----------------------------------------------------------------------------

def _crop_box(label: np.ndarray, class_id: int, pad: int = 6) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero(label == class_id)
    if ys.size == 0:
        return None
    h, w = label.shape
    return max(0, ys.min() - pad), min(h, ys.max() + pad + 1), max(0, xs.min() - pad), min(w, xs.max() + pad + 1)


def qualitative_figure(images: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                       predictions: Mapping[str, Sequence[np.ndarray]], taxonomy: Taxonomy,
                       *, names: Sequence[str] | None = None, crop_classes: Sequence[int] | None = None,
                       title: str = "") -> "plt.Figure":
    """Figure 3 style grid: one row per image; columns: image, ground truth, each method's
    prediction, then (when the image holds a tail class) a zoomed crop around the rarest present
    tail class for the ground truth and each method."""
    methods = list(predictions)
    crop_classes = list(taxonomy.accessory_ids if crop_classes is None else crop_classes)
    boxes = []
    for label in labels:
        box = None
        for cls in reversed(crop_classes):  # taxonomy lists accessories roughly from common to rare
            box = _crop_box(np.asarray(label), cls)
            if box is not None:
                box = (cls, *box)
                break
        boxes.append(box)
    has_crops = any(b is not None for b in boxes)
    n_cols = 2 + len(methods) + ((1 + len(methods)) if has_crops else 0)
    n_rows = len(images)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(n_rows, n_cols, figsize=(1.35 * n_cols, 1.4 * n_rows + 0.4), squeeze=False)
        for r in range(n_rows):
            panels = [("image", np.asarray(images[r])), ("ground truth", taxonomy.colorize(labels[r]))]
            panels += [(m, taxonomy.colorize(predictions[m][r])) for m in methods]
            if has_crops:
                box = boxes[r]
                crop_sources = [("GT", labels[r])] + [(m, predictions[m][r]) for m in methods]
                for name, lab in crop_sources:
                    if box is None:
                        panels.append((f"crop: {name}", None))
                    else:
                        cls, y0, y1, x0, x1 = box
                        panels.append((f"{taxonomy[cls].display} crop\n{name}",
                                       taxonomy.colorize(np.asarray(lab)[y0:y1, x0:x1])))
            for c, (heading, img) in enumerate(panels):
                ax = axes[r, c]
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_visible(img is not None)
                if img is not None:
                    ax.imshow(img, interpolation="nearest")
                if r == 0 or (has_crops and c >= 2 + len(methods)):
                    ax.set_title(heading, fontsize=6.5)
            if names is not None:
                axes[r, 0].set_ylabel(str(names[r]), fontsize=6.5)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
    return fig


def legend_figure(taxonomy: Taxonomy) -> "plt.Figure":
    """The class colour legend used by every label map in the report."""
    from matplotlib.patches import Patch  # lazy: matplotlib only when a figure is drawn

    ids = list(taxonomy.display_order) + list(taxonomy.background_ids)
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(6.4, 0.9))
        handles = [Patch(facecolor=c, edgecolor="black", linewidth=0.4, label=taxonomy[i].display)
                   for i, c in zip(ids, np.asarray([taxonomy.palette[i] for i in ids]) / 255)]
        fig.legend(handles=handles, loc="center", ncol=7, frameon=False, fontsize=7)
    return fig


# ---- FPS against resolution -----------------------------------------------------------------------

@dataclass(frozen=True)
class ResolutionCurve:
    label: str
    resolutions: Sequence[int]
    values: Sequence[float]


def fps_resolution_figure(fps_curves: Sequence[ResolutionCurve], f1_curves: Sequence[ResolutionCurve] = (),
                          *, title: str = "", fps_label: str = "FPS (images/s, batch 1)") -> "plt.Figure":
    """Table 2b as a plot: FPS against input resolution (left) and, when given, mean F1 against
    resolution (right); our measurements and the paper's numbers as separate, labelled curves."""
    n_panels = 2 if f1_curves else 1
    n_legend = max(len(fps_curves), len(f1_curves))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, n_panels, figsize=(4.2 * n_panels, 3.2 + 0.22 * n_legend), squeeze=False)
        colors = method_colors(len(fps_curves) + len(f1_curves))
        for ax, curves, ylabel, offset in ((axes[0, 0], fps_curves, fps_label, 0),
                                           *(((axes[0, 1], f1_curves, "mean F1 (%)", len(fps_curves)),)
                                             if f1_curves else ())):
            for k, curve in enumerate(curves):
                ax.plot(curve.resolutions, curve.values, marker=MARKERS[(k + offset) % len(MARKERS)],
                        linestyle=LINESTYLES[k % len(LINESTYLES)], color=colors[k + offset], label=curve.label)
            ax.set_xscale("log", base=2)
            ticks = sorted({r for c in curves for r in c.resolutions})
            ax.set_xticks(ticks, [str(t) for t in ticks], rotation=60)
            ax.minorticks_off()
            if ax is axes[0, 0]:
                ax.set_yscale("log")  # CPU and GPU throughputs differ by orders of magnitude
            ax.set_xlabel("input resolution (px, square)")
            ax.set_ylabel(ylabel)
            ax.grid(linewidth=0.3, alpha=0.6, which="both")
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.28), frameon=False)
        if title:
            fig.suptitle(title)
        fig.tight_layout()
    return fig


# ---- ΔF1 per class against presence ---------------------------------------------------------------

@dataclass(frozen=True)
class DeltaPanel:
    """One method's per-class ΔF1 against a reference (class id -> fraction) and its 95% intervals."""

    title: str
    delta: Mapping[int, float]
    intervals: Mapping[int, tuple[float, float]]


def delta_vs_presence_figure(presence: Mapping[int, float], panels: Sequence[DeltaPanel], taxonomy: Taxonomy,
                             *, highlight: Sequence[int] | None = None, title: str = "") -> "plt.Figure":
    """Who gains, who pays: per-class ΔF1 (percent points, y) against presence probability (x, log
    scale), one panel per method in its own colour, with the interval as error bars. Filled markers:
    the interval excludes 0; hollow: it does not. Names of ``highlight`` classes (default: the
    accessories, the tail) in red. Panels share the y axis."""
    highlight = set(taxonomy.accessory_ids if highlight is None else highlight)
    n = max(len(panels), 1)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(rows, cols, figsize=(4.3 * cols, 3.5 * rows), sharey=True, squeeze=False)
        colors = method_colors(n)
        for k, ax in enumerate(axes.flat):
            if k >= len(panels):
                ax.set_visible(False)
                continue
            panel = panels[k]
            ids = [i for i in taxonomy.foreground_ids
                   if _finite(presence.get(i)) and presence[i] > 0 and _finite(panel.delta.get(i))]
            for i in ids:
                d = 100 * panel.delta[i]
                lo, hi = (100 * v for v in panel.intervals.get(i, (panel.delta[i], panel.delta[i])))
                lo, hi = (d, d) if not (_finite(lo) and _finite(hi)) else (lo, hi)
                significant = lo > 0 or hi < 0
                ax.errorbar([presence[i]], [d], yerr=[[max(0.0, d - lo)], [max(0.0, hi - d)]],
                            fmt=MARKERS[k % len(MARKERS)], color=colors[k], ecolor=colors[k], elinewidth=0.9,
                            capsize=2, markersize=5, markerfacecolor=colors[k] if significant else "white")
                ax.annotate(taxonomy[i].display, (presence[i], d), fontsize=6, xytext=(3, 2),
                            textcoords="offset points", color="#d62728" if i in highlight else "0.3",
                            fontweight="bold" if i in highlight else "normal")
            ax.axhline(0.0, color="0.3", linewidth=0.8)
            ax.set_xscale("log")
            ax.set_xlabel("presence probability (training split, log scale)")
            if k % cols == 0:
                ax.set_ylabel("ΔF1 (percent points)")
            ax.set_title(panel.title, fontsize=8)
            ax.grid(linewidth=0.3, alpha=0.6, which="both")
        if title:
            fig.suptitle(title)
        fig.tight_layout()
    return fig
