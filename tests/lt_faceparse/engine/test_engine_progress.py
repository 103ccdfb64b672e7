"""Run log and progress display."""

from __future__ import annotations

import io
import sys

from lt_faceparse.engine.progress import EpochProgress, JsonlLog, read_log


def test_jsonl_log_appends_records_and_is_silent_off_rank_0(tmp_path):
    log = JsonlLog(tmp_path / "log.jsonl")
    log.write("step", step=1, loss=0.5)
    log.write("epoch", epoch=0, path=tmp_path)
    records = read_log(tmp_path / "log.jsonl")
    assert [(r["event"], r.get("step"), r.get("path")) for r in records] == [("step", 1, None),
                                                                           ("epoch", None, str(tmp_path))]
    JsonlLog(tmp_path / "other.jsonl", active=False).write("step", step=1)
    assert not (tmp_path / "other.jsonl").exists()


def test_progress_bar_only_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # not a TTY
    assert EpochProgress().progress.disable
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert not EpochProgress().progress.disable
    assert EpochProgress(enabled=False).progress.disable  # other ranks
    with EpochProgress() as bar:  # fields: loss, images/s
        bar.start_epoch(0, total_steps=4, done_steps=1)
        bar.step(float("nan"), 12.5)
        task = bar.progress.tasks[0]
        assert (task.completed, task.total, task.fields["loss"], task.fields["speed"]) == (2, 4, "nan", "12.5")
