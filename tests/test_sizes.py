"""Project rule: a module stays under 400 lines and a function under 80 (in lt_faceparse/, segface/,
baselines/). A function's length runs from its ``def`` (decorators included) to its last line."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("lt_faceparse", "segface", "baselines")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
# owned by other engineers of issue 25 while this rule lands; the lead empties this list after merging
ALLOWED_UNTIL_MERGED: set[str] = set()


def oversized(path: Path) -> list[str]:
    """What in ``path`` breaks the size rule, one line each (empty when nothing does)."""
    source = path.read_text()
    problems = []
    num_lines = len(source.splitlines())
    if num_lines >= MAX_MODULE_LINES:
        problems.append(f"{num_lines} lines (the limit is {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = node.end_lineno - first + 1
            if length >= MAX_FUNCTION_LINES:
                problems.append(f"function {node.name} (line {node.lineno}) has {length} lines "
                                f"(the limit is {MAX_FUNCTION_LINES})")
    return problems


def test_the_checker_counts_modules_and_functions(tmp_path):
    short = tmp_path / "short.py"
    short.write_text("def f():\n    return 1\n")
    assert oversized(short) == []
    long = tmp_path / "long.py"
    long.write_text("def f():\n" + "    x = 1\n" * 90 + "\n" * 320)
    assert oversized(long) == ["411 lines (the limit is 400)", "function f (line 1) has 91 lines (the limit is 80)"]


@pytest.mark.parametrize("package", PACKAGES)
def test_modules_and_functions_stay_under_the_limits(package):
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        if relative not in ALLOWED_UNTIL_MERGED:
            found += [f"{relative}: {problem}" for problem in oversized(path)]
    assert not found, "\n".join(found)
