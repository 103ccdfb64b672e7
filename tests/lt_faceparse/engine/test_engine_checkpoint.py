"""Training checkpoints: weights-only loading, RNG round trip, pruning, clear errors."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from lt_faceparse.engine.checkpoint import (capture_rng, latest_checkpoint, list_checkpoints, load_checkpoint,
                                            restore_rng, restore_scheduler, save_checkpoint, scheduler_state)
from lt_faceparse.errors import DataError


def _draws():
    return (torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)],
            np.random.randn(), random.gauss(0, 1))


def _state(step: int, epoch: int = 0) -> dict:
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.AdamW(model.parameters())
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 5], gamma=0.1)
    return {"model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": scheduler_state(sched),
            "scaler": {}, "epoch": epoch, "step_in_epoch": 1, "global_step": step, "rng": [capture_rng()]}


def test_rng_states_round_trip_through_a_weights_only_file(tmp_path):
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    np.random.randn()  # leave a cached gaussian in numpy's state
    random.gauss(0, 1)
    path = save_checkpoint(tmp_path, {**_state(3), "rng": [capture_rng()]}, keep_last=2)
    expected = _draws()
    state = load_checkpoint(path)  # torch.load(weights_only=True) inside
    restore_rng(state["rng"][0])
    assert _draws() == expected


def test_scheduler_state_round_trips_without_counter():
    model = torch.nn.Linear(1, 1)
    opt = torch.optim.AdamW(model.parameters(), lr=1.0)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[2, 4], gamma=0.5)
    for _ in range(3):
        opt.step()
        sched.step()
    state = scheduler_state(sched)
    assert type(state["milestones"]) is dict
    fresh_opt = torch.optim.AdamW(model.parameters(), lr=1.0)
    fresh = torch.optim.lr_scheduler.MultiStepLR(fresh_opt, [9], gamma=0.9)
    fresh_opt.load_state_dict(opt.state_dict())  # the group's current lr (0.5) lives in the optimizer
    restore_scheduler(fresh, state)
    fresh.optimizer.step()
    fresh.step()  # epoch 4: second milestone
    assert fresh.get_last_lr() == [0.25]


def test_only_the_newest_checkpoints_are_kept(tmp_path):
    for step in (4, 8, 12, 16):
        save_checkpoint(tmp_path, _state(step, epoch=step // 4), keep_last=2)
    assert [p.name for p in list_checkpoints(tmp_path)] == ["ckpt_e0003_s000000012.pt", "ckpt_e0004_s000000016.pt"]
    assert latest_checkpoint(tmp_path).name == "ckpt_e0004_s000000016.pt"
    assert latest_checkpoint(tmp_path / "nothing") is None


def test_unreadable_or_incomplete_checkpoints_name_the_file(tmp_path):
    bad = tmp_path / "ckpt.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="ckpt.pt"):
        load_checkpoint(bad)
    partial = tmp_path / "partial.pt"
    torch.save({"model": {}}, partial)
    with pytest.raises(DataError, match="lacks"):
        load_checkpoint(partial)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
