"""Tables as data, written as Markdown, CSV, LaTeX (booktabs) and rich.

A :class:`Table` is a list of :class:`Column` specs and a list of row dicts holding raw values
(scores as fractions, as records store them). Formatting happens once, in :func:`format_cell`:
``pct`` columns print ``100 * value`` with two decimals as the papers do, ``ci`` columns print a
``(low, high)`` fraction pair as ``[86.12, 87.40]``. Best values per column (``best="max"`` or
``"min"``) are compared after rounding to what is printed, so ties are all marked (a column in which
every row ties marks none); Markdown marks
them ``**bold**``, LaTeX ``\\textbf{}``, rich bold; CSV carries plain values.
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from rich.table import Table as RichTable

from lt_faceparse.atomic import atomic_write_text

MISSING = "-"


@dataclass(frozen=True)
class Column:
    """One table column: ``key`` into the row dicts, printed ``header``, format and best rule.

    fmt: ``pct`` (fraction -> percent, 2 decimals), ``pct_delta`` (signed percent points),
    ``float`` / ``float1`` / ``float3`` (2, 1 or 3 decimals), ``int``, ``millions`` (count -> M with
    3 decimals), ``ci`` ((low, high) fractions -> "[lo, hi]" percent), ``str`` (left-aligned text),
    ``rstr`` (right-aligned pre-formatted text, e.g. "+1.23*").
    best: ``"max"``, ``"min"`` or None.
    """

    key: str
    header: str
    fmt: str = "pct"
    best: str | None = None


@dataclass
class Table:
    columns: list[Column]
    rows: list[dict[str, Any]]
    title: str = ""
    caption: str = ""
    notes: list[str] = field(default_factory=list)

    def best_rows(self, column: Column) -> set[int]:
        """Indices of the rows holding the best printed value of ``column`` (empty when no rule)."""
        if column.best is None:
            return set()
        keyed = []
        for i, row in enumerate(self.rows):
            value = _comparable(row.get(column.key), column.fmt)
            if value is not None:
                keyed.append((value, i))
        if len(keyed) < 2 or len({v for v, _ in keyed}) == 1:
            return set()  # nothing to single out: one value, or every row ties
        target = max(v for v, _ in keyed) if column.best == "max" else min(v for v, _ in keyed)
        return {i for v, i in keyed if v == target}


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _comparable(value: Any, fmt: str) -> float | None:
    """The value as printed, as a number (None when missing or not numeric)."""
    if _is_missing(value) or fmt in ("str", "rstr", "ci"):
        return None
    text = format_cell(value, fmt)
    try:
        return float(text.replace("+", ""))
    except ValueError:
        return None


def format_cell(value: Any, fmt: str) -> str:
    """Format one raw value for display (see :class:`Column`)."""
    if _is_missing(value):
        return MISSING
    if fmt == "pct":
        return f"{100 * value:.2f}"
    if fmt == "pct_delta":
        return f"{100 * value:+.2f}"
    if fmt == "float":
        return f"{value:.2f}"
    if fmt == "float1":
        return f"{value:.1f}"
    if fmt == "float3":
        return f"{value:.3f}"
    if fmt == "int":
        return f"{int(value):d}"
    if fmt == "millions":
        return f"{value / 1e6:.3f}"
    if fmt == "ci":
        lo, hi = value
        if _is_missing(lo) or _is_missing(hi):
            return MISSING
        return f"[{100 * lo:.2f}, {100 * hi:.2f}]"
    if fmt in ("str", "rstr"):
        return str(value)
    raise ValueError(f"unknown column format {fmt!r}")


def _cells(table: Table) -> list[list[tuple[str, bool]]]:
    best = [table.best_rows(c) for c in table.columns]
    return [
        [(format_cell(row.get(c.key), c.fmt), i in best[j]) for j, c in enumerate(table.columns)]
        for i, row in enumerate(table.rows)
    ]


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(table: Table) -> str:
    """GitHub Markdown: optional ``### title``, the table, then caption and notes as paragraphs."""
    lines = []
    if table.title:
        lines += [f"### {table.title}", ""]
    lines.append("| " + " | ".join(_md_escape(c.header) for c in table.columns) + " |")
    lines.append("|" + "|".join("---" if c.fmt == "str" else "---:" for c in table.columns) + "|")
    for row in _cells(table):
        lines.append("| " + " | ".join(f"**{_md_escape(t)}**" if b else _md_escape(t) for t, b in row) + " |")
    if table.caption:
        lines += ["", table.caption]
    for note in table.notes:
        lines += ["", note]
    return "\n".join(lines) + "\n"


def to_csv(table: Table) -> str:
    """CSV with the printed headers and printed values (no bold markers, ``-`` for missing)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([c.header for c in table.columns])
    for row in _cells(table):
        writer.writerow([t for t, _ in row])
    return buf.getvalue()


_LATEX_SPECIALS = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    # Greek letters of method names and remedy parameters (focal(γ=2), LA(τ=1), β, α)
    "Δ": r"$\Delta$", "α": r"$\alpha$", "β": r"$\beta$", "γ": r"$\gamma$", "τ": r"$\tau$",
}


def latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIALS.get(ch, ch) for ch in text)


WIDE_COLUMNS = 12  # tables wider than this span both columns and are scaled to the text width


def to_latex(table: Table, *, label: str | None = None) -> str:
    """A ``table`` environment with a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``).

    Tables of more than :data:`WIDE_COLUMNS` columns (a per-class leaderboard) become ``table*``
    with the tabular scaled to ``\\textwidth`` (needs ``\\usepackage{graphicx}`` too)."""
    spec = "".join("l" if c.fmt == "str" else "r" for c in table.columns)
    wide = len(table.columns) > WIDE_COLUMNS
    env = "table*" if wide else "table"
    lines = [r"\begin{" + env + "}[t]", r"\centering", r"\small"]
    if table.caption or table.title:
        lines.append(r"\caption{" + latex_escape(table.caption or table.title) + "}")
    if label:
        lines.append(r"\label{" + label + "}")
    if wide:
        lines.append(r"\resizebox{\textwidth}{!}{%")
    lines += [r"\begin{tabular}{" + spec + "}", r"\toprule"]
    lines.append(" & ".join(latex_escape(c.header) for c in table.columns) + r" \\")
    lines.append(r"\midrule")
    for row in _cells(table):
        cells = [r"\textbf{" + latex_escape(t) + "}" if b else latex_escape(t) for t, b in row]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}" + ("}" if wide else ""), r"\end{" + env + "}"]
    return "\n".join(lines) + "\n"


def to_rich(table: Table):
    """A :class:`rich.table.Table` (best values bold) for printing in a terminal."""
    rich_table = RichTable(title=table.title or None, caption=table.caption or None, show_lines=False)
    for c in table.columns:
        rich_table.add_column(c.header, justify="left" if c.fmt == "str" else "right")
    for row in _cells(table):
        rich_table.add_row(*[f"[bold]{t}[/bold]" if b else t for t, b in row])
    return rich_table


def file_slug(text: str) -> str:
    """ASCII file-name form of a label: "segface (mobilenet) @64" -> "segface_mobilenet_64",
    "post-hoc LA(τ=1)" -> "post_hoc_la_1" (runs of anything but a-z and 0-9 become one underscore)."""
    return re.sub(r"[^0-9a-z]+", "_", text.lower()).strip("_")


def write_table(table: Table, out_dir: str | Path, stem: str) -> dict[str, Path]:
    """Write ``stem.md``, ``stem.csv`` and ``stem.tex`` atomically; return the paths by format."""
    out_dir = Path(out_dir)
    return {
        "md": atomic_write_text(out_dir / f"{stem}.md", to_markdown(table)),
        "csv": atomic_write_text(out_dir / f"{stem}.csv", to_csv(table)),
        "tex": atomic_write_text(out_dir / f"{stem}.tex", to_latex(table, label=f"tab:{stem}")),
    }


def concat_markdown(tables: Sequence[Table]) -> str:
    return "\n".join(to_markdown(t) for t in tables)
