"""Progress bars: drawn on a terminal, silent (rich not loaded) otherwise."""

from __future__ import annotations

import io
import subprocess
import sys

from lt_faceparse import terminal
from lt_faceparse.terminal import progress_bar


def test_no_terminal_no_rich():
    code = ("import sys\nfrom lt_faceparse.terminal import progress_bar\n"
            "with progress_bar('x', 3) as bar:\n    bar.advance(2); bar.describe('y'); bar.advance()\n"
            "print('rich' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False" and out.stderr == ""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_draws_the_bar(monkeypatch, capsys):
    monkeypatch.setattr(terminal.sys, "stderr", _Terminal())
    with progress_bar("counting", 4, transient=False) as bar:
        assert bar.progress is not None  # rich's Progress, on its default console
        bar.advance(3)
        bar.describe("counting images")
        bar.advance()
        task = bar.progress.tasks[0]
        assert (task.completed, task.total, task.description) == (4, 4, "counting images")
    assert "counting images" in capsys.readouterr().out
