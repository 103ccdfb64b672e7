"""Progress bars for long jobs: drawn with rich on a terminal, nothing (and rich not even loaded,
about 30 ms of a command's start) when stderr goes to a file or a pipe."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator


@dataclass
class ProgressBar:
    """One task's bar (``progress`` None: no terminal, every call does nothing)."""

    progress: Any = None  # rich.progress.Progress
    task: Any = None  # its task id

    def advance(self, steps: int = 1) -> None:
        if self.progress is not None:
            self.progress.advance(self.task, steps)

    def describe(self, text: str) -> None:
        """Replace the bar's description (e.g. with the item now running)."""
        if self.progress is not None:
            self.progress.update(self.task, description=text)


@contextmanager
def progress_bar(description: str, total: int, *, transient: bool = True) -> Iterator[ProgressBar]:
    """A bar of ``total`` steps on stderr when it is a terminal (``transient``: erased when done)."""
    if not sys.stderr.isatty():
        yield ProgressBar()
        return
    from rich.progress import Progress  # lazy: only when a bar is drawn

    with Progress(transient=transient) as progress:
        yield ProgressBar(progress, progress.add_task(description, total=total))
