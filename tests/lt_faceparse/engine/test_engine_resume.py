"""``resume: auto``: fresh first start, continue a restart, leave a finished run, refuse another run's
folder, fall back past an unreadable newest checkpoint."""

from __future__ import annotations

import logging
import shutil

import pytest
import torch
from engine_testdata import MemoryFaces, cut_copy, cut_in_place, tiny_config
from safetensors.torch import load_file

from lt_faceparse.engine.checkpoint import CHECKPOINT_DIR, list_checkpoints, load_checkpoint
from lt_faceparse.engine.progress import read_log
from lt_faceparse.engine.resume import ResumeRefused, run_finished
from lt_faceparse.engine.train import train

SECTIONS = dict(optim={"epochs": 3}, checkpoint={"every_steps": 1, "keep_last": 100}, deterministic=True)


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """An uninterrupted 3-epoch run (4 steps per epoch), a checkpoint after every step."""
    run = tmp_path_factory.mktemp("resume") / "whole"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the tests (conftest), so that the sums add up in the same order
    try:
        return train(tiny_config(run, **SECTIONS), train_dataset=MemoryFaces(32))
    finally:
        torch.set_num_threads(threads)




def _starts(run):
    return [r for r in read_log(run / "log.jsonl") if r["event"] == "start"]


def test_first_start_of_an_auto_run_begins_fresh_and_logs_its_launch(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
    run = train(tiny_config(tmp_path / "run", resume="auto", optim={"epochs": 1}), train_dataset=MemoryFaces(16))
    (start,) = _starts(run)
    assert start["resume"] == "auto" and start["resumed_from"] is None and start["global_step"] == 0
    assert start["restart_count"] == 0 and start["world_size"] == 1 and start["host"]
    assert run_finished(run, "final.safetensors")


def test_restart_continues_from_the_newest_checkpoint_and_equals_the_uninterrupted_run(whole, tmp_path, monkeypatch):
    cut = cut_copy(whole, tmp_path / "cut", keep_until_step=6)
    stale = cut / CHECKPOINT_DIR / ".ckpt_e0001_s000000007.pt.abc123.tmp"  # a write killed half-way
    stale.write_bytes(b"partial")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    train(tiny_config(cut, resume="auto", **SECTIONS), train_dataset=MemoryFaces(32))
    assert _max_diff(load_file(str(whole / "final.safetensors")), load_file(str(cut / "final.safetensors"))) == 0.0
    restart = _starts(cut)[-1]
    assert restart["resumed_from"].endswith("ckpt_e0001_s000000006.pt") and restart["global_step"] == 6
    assert restart["restart_count"] == 1 and restart["step_in_epoch"] == 2
    assert not stale.exists()


def test_a_truncated_newest_checkpoint_falls_back_to_the_previous_one_with_a_warning(whole, tmp_path, caplog):
    cut = cut_copy(whole, tmp_path / "cut", keep_until_step=7)
    newest = list_checkpoints(cut)[-1]
    assert newest.name == "ckpt_e0001_s000000007.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # a partial copy
    with caplog.at_level(logging.WARNING, logger="lt_faceparse.engine"):
        train(tiny_config(cut, resume="auto", **SECTIONS), train_dataset=MemoryFaces(32))
    assert "ckpt_e0001_s000000007.pt: skipped" in caplog.text and "previous checkpoint" in caplog.text
    assert _max_diff(load_file(str(whole / "final.safetensors")), load_file(str(cut / "final.safetensors"))) == 0.0
    log = read_log(cut / "log.jsonl")
    (skipped,) = [r for r in log if r["event"] == "checkpoint_unreadable"]
    assert skipped["path"] == "ckpt_e0001_s000000007.pt" and "readable" in skipped["problem"]
    assert _starts(cut)[-1]["resumed_from"].endswith("ckpt_e0001_s000000006.pt")


def test_no_readable_checkpoint_is_refused_rather_than_silently_restarted(whole, tmp_path):
    cut = cut_copy(whole, tmp_path / "cut", keep_until_step=2)
    for path in list_checkpoints(cut):
        path.write_bytes(b"")
    with pytest.raises(ResumeRefused, match="no checkpoint can be read"):
        train(tiny_config(cut, resume="auto", **SECTIONS), train_dataset=MemoryFaces(32))


def test_a_finished_run_is_left_as_it_is(whole, tmp_path, caplog):
    run = tmp_path / "done"
    shutil.copytree(whole, run)
    before = (run / "final.safetensors").read_bytes()
    log_lines = len(read_log(run / "log.jsonl"))
    with caplog.at_level(logging.INFO, logger="lt_faceparse.engine"):
        assert train(tiny_config(run, resume="auto", **SECTIONS), train_dataset=MemoryFaces(32)) == run
    assert [r.levelno for r in caplog.records if "already finished" in r.getMessage()] == [logging.INFO]  # asked for
    assert (run / "final.safetensors").read_bytes() == before
    log = read_log(run / "log.jsonl")
    assert len(log) == log_lines + 1 and log[-1]["event"] == "already_finished"
    assert log[-1]["checkpoint"] == "ckpt_e0003_s000000012.pt"
    assert run_finished(run, "final.safetensors")  # still: no new start was logged


def test_a_folder_of_another_config_is_refused_with_the_folder_and_the_keys(whole, tmp_path):
    for cut_at, finished in ((12, True), (5, False)):
        run = tmp_path / f"other{cut_at}"
        shutil.copytree(whole, run)
        if not finished:
            cut_in_place(run, cut_at)
        with pytest.raises(ResumeRefused) as err:
            train(tiny_config(run, resume="auto", **{**SECTIONS, "optim": {"epochs": 3, "lr": 0.5}, "seed": 3}),
                  train_dataset=MemoryFaces(32))
        assert str(run) in str(err.value) and "optim.lr, seed" in str(err.value)
    # before its first checkpoint, the folder's config.yaml is the reference
    early = tmp_path / "early"
    early.mkdir()
    shutil.copy(whole / "config.yaml", early / "config.yaml")
    with pytest.raises(ResumeRefused, match="config.yaml differs in optim.lr"):
        train(tiny_config(early, resume="auto", **{**SECTIONS, "optim": {"epochs": 3, "lr": 0.5}}),
              train_dataset=MemoryFaces(32))


def test_resume_false_still_refuses_a_folder_with_checkpoints(whole, tmp_path):
    run = tmp_path / "again"
    shutil.copytree(whole, run)
    with pytest.raises(ResumeRefused, match="resume=auto"):
        train(tiny_config(run, **SECTIONS), train_dataset=MemoryFaces(32))
    assert len(_starts(run)) == 1  # nothing started


def test_a_restart_before_the_first_checkpoint_of_a_remedy_run_matches_its_config_yaml(tmp_path):
    """``config.yaml`` holds the longtail section as the run resolved it (every setting expanded, the
    training split's priors inline); the same config given again matches it, another remedy does not."""
    remedy = {"loss": {"name": "logit_adjusted", "tau": 1.0}}
    config = tiny_config(tmp_path / "run", resume="auto", optim={"epochs": 1}, longtail=remedy)
    run = train(config, train_dataset=MemoryFaces(16))
    saved = (run / "config.yaml").read_text()
    assert "pixel_counts" in saved  # the priors are stored inline, unlike in the config given
    for path in list_checkpoints(run):  # killed before its first checkpoint
        path.unlink()
    (run / "final.safetensors").unlink()
    train(config, train_dataset=MemoryFaces(16))
    assert len(_starts(run)) == 2 and (run / "final.safetensors").is_file()
    (run / "final.safetensors").unlink()
    for path in list_checkpoints(run):
        path.unlink()
    other = tiny_config(run, resume="auto", optim={"epochs": 1}, longtail={"loss": {"name": "focal", "gamma": 2.0}})
    with pytest.raises(ResumeRefused, match="config.yaml differs in longtail.loss"):
        train(other, train_dataset=MemoryFaces(16))


def test_a_checkpoint_from_before_newer_config_keys_resumes_with_their_defaults(whole, tmp_path):
    """Keys added to the schema later (the long-tail section, TensorBoard, compile, formulation) count
    with their defaults when a checkpoint's config lacks them."""
    cut = cut_copy(whole, tmp_path / "old", keep_until_step=5)
    for path in list_checkpoints(cut):
        state = load_checkpoint(path)
        for key in ("longtail", "tensorboard", "compile", "formulation"):
            del state["config"][key]
        torch.save(state, path)
    train(tiny_config(cut, resume="auto", **SECTIONS), train_dataset=MemoryFaces(32))
    assert _max_diff(load_file(str(whole / "final.safetensors")), load_file(str(cut / "final.safetensors"))) == 0.0
    assert _starts(cut)[-1]["resumed_from"].endswith("ckpt_e0001_s000000005.pt")
