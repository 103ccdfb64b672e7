"""Progress display (rich, terminal only) and the run's JSONL log."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class JsonlLog:
    """Appends one JSON object per line (``{"event": ..., "time": ..., ...}``); inactive off rank 0."""

    def __init__(self, path: str | Path, *, active: bool = True):
        self.path = Path(path)
        self.active = active
        if active:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, event: str, **fields: Any) -> None:
        if not self.active:
            return
        record = {"event": event, "time": round(time.time(), 3), **fields}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, default=_plain) + "\n")
            fh.flush()


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """All records of a JSONL log."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot log {type(value).__name__}")


class EpochProgress:
    """A rich progress bar for one epoch: loss, images/s, ETA. Silent unless stderr is a terminal."""

    def __init__(self, *, enabled: bool = True):
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[speed]} img/s"),
            TimeElapsedColumn(), TimeRemainingColumn(),
            disable=not (enabled and sys.stderr.isatty()), transient=False,
        )
        self.task = None

    def __enter__(self) -> "EpochProgress":
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.__exit__(*exc)

    def start_epoch(self, epoch: int, total_steps: int, done_steps: int = 0) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task(f"epoch {epoch}", total=total_steps, completed=done_steps,
                                           loss="-", speed="-")

    def step(self, loss: float, images_per_s: float, advance: int = 1) -> None:
        """``advance`` steps done; ``loss``: the newest step's, ``images_per_s``: over those steps."""
        loss_text = f"{loss:.4f}" if math.isfinite(loss) else str(loss)
        self.progress.update(self.task, advance=advance, loss=loss_text, speed=f"{images_per_s:.1f}")
