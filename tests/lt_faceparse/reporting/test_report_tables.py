import math

import pytest

from lt_faceparse.reporting.tables import (
    Column,
    Table,
    file_slug,
    format_cell,
    latex_escape,
    to_csv,
    to_latex,
    to_markdown,
    to_rich,
    write_table,
)


def small_table() -> Table:
    return Table(
        columns=[
            Column("method", "Method", "str"),
            Column("f1", "Mean F1", "pct", "max"),
            Column("fps", "FPS", "float", "max"),
            Column("params", "Params (M)", "millions", "min"),
            Column("ci", "95% CI", "ci"),
        ],
        rows=[
            {"method": "A_net", "f1": 0.8712, "fps": 40.0, "params": 7_034_000, "ci": (0.86, 0.88)},
            {"method": "B", "f1": 0.87123, "fps": float("nan"), "params": 91_006_000, "ci": None},
            {"method": "C", "f1": 0.5, "fps": 95.961, "params": None, "ci": (0.4, 0.6)},
        ],
        title="Demo",
        caption="Mean F1 over foreground classes.",
    )


def test_format_cell_conventions():
    assert format_cell(0.88961, "pct") == "88.96"
    assert format_cell(-0.0123, "pct_delta") == "-1.23"
    assert format_cell(0.0123, "pct_delta") == "+1.23"
    assert format_cell(7_034_000, "millions") == "7.034"
    assert format_cell((0.861234, 0.874), "ci") == "[86.12, 87.40]"
    assert format_cell(None, "pct") == "-"
    assert format_cell(math.nan, "float") == "-"
    with pytest.raises(ValueError):
        format_cell(1, "weird")


def test_best_rows_compare_printed_values_and_mark_ties():
    table = small_table()
    cols = {c.key: c for c in table.columns}
    assert table.best_rows(cols["f1"]) == {0, 1}  # 87.12 == 87.12 once rounded
    assert table.best_rows(cols["fps"]) == {2}  # NaN ignored
    assert table.best_rows(cols["params"]) == {0}
    assert table.best_rows(cols["method"]) == set()
    tie = Table([Column("v", "V", "pct", "max")], [{"v": 0.0}, {"v": 0.00001}])
    assert tie.best_rows(tie.columns[0]) == set()  # every row prints 0.00: nothing is best


def test_markdown_exact():
    assert to_markdown(small_table()) == (
        "### Demo\n"
        "\n"
        "| Method | Mean F1 | FPS | Params (M) | 95% CI |\n"
        "|---|---:|---:|---:|---:|\n"
        "| A_net | **87.12** | 40.00 | **7.034** | [86.00, 88.00] |\n"
        "| B | **87.12** | - | 91.006 | - |\n"
        "| C | 50.00 | **95.96** | - | [40.00, 60.00] |\n"
        "\n"
        "Mean F1 over foreground classes.\n"
    )


def test_csv_exact():
    assert to_csv(small_table()) == (
        "Method,Mean F1,FPS,Params (M),95% CI\n"
        "A_net,87.12,40.00,7.034,\"[86.00, 88.00]\"\n"
        "B,87.12,-,91.006,-\n"
        "C,50.00,95.96,-,\"[40.00, 60.00]\"\n"
    )


def test_latex_exact_booktabs_and_escaping():
    assert to_latex(small_table(), label="tab:demo") == (
        "\\begin{table}[t]\n"
        "\\centering\n"
        "\\small\n"
        "\\caption{Mean F1 over foreground classes.}\n"
        "\\label{tab:demo}\n"
        "\\begin{tabular}{lrrrr}\n"
        "\\toprule\n"
        "Method & Mean F1 & FPS & Params (M) & 95\\% CI \\\\\n"
        "\\midrule\n"
        "A\\_net & \\textbf{87.12} & 40.00 & \\textbf{7.034} & [86.00, 88.00] \\\\\n"
        "B & \\textbf{87.12} & - & 91.006 & - \\\\\n"
        "C & 50.00 & \\textbf{95.96} & - & [40.00, 60.00] \\\\\n"
        "\\bottomrule\n"
        "\\end{tabular}\n"
        "\\end{table}\n"
    )
    assert latex_escape("Δ F1 & 50%") == "$\\Delta$ F1 \\& 50\\%"


def test_rich_table_has_all_rows_and_bold_best():
    rich_table = to_rich(small_table())
    assert rich_table.row_count == 3
    assert [c.header for c in rich_table.columns][:2] == ["Method", "Mean F1"]
    assert list(rich_table.columns[1].cells)[0] == "[bold]87.12[/bold]"


def test_write_table_writes_three_formats(tmp_path):
    paths = write_table(small_table(), tmp_path / "out", "demo")
    assert set(paths) == {"md", "csv", "tex"}
    assert paths["md"].read_text() == to_markdown(small_table())
    assert paths["tex"].read_text().count("\\label{tab:demo}") == 1


def test_wide_latex_tables_are_scaled_to_the_text_width():
    columns = [Column(f"c{i}", f"C{i}", "pct", "max") for i in range(13)]
    text = to_latex(Table(columns, [{f"c{i}": 0.5 for i in range(13)}]))
    lines = text.splitlines()
    assert lines[0] == "\\begin{table*}[t]" and lines[-1] == "\\end{table*}"
    assert "\\resizebox{\\textwidth}{!}{%" in lines
    assert lines[-2] == "\\end{tabular}}"
    assert text.count("{") == text.count("}")


def test_file_slug_is_ascii_and_collapses_runs():
    assert file_slug("segface (timm/mobilenetv3_large_100) @64") == "segface_timm_mobilenetv3_large_100_64"
    assert file_slug("post-hoc LA(τ=1)") == "post_hoc_la_1"
    assert file_slug("n/a") == "n_a"
