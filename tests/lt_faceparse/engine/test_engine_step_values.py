"""Per-step values read on the host in batches, and the divergence guard in both of its modes."""

from __future__ import annotations

import math

import pytest
import torch

from lt_faceparse.engine.optim import step_unless
from lt_faceparse.engine.progress import JsonlLog, read_log
from lt_faceparse.engine.step_values import StepValues, TrainingDiverged


def _add(values: StepValues, loss: float, step: int, norm: float | None = None):
    return values.add(torch.tensor(loss), None if norm is None else torch.tensor(norm), epoch=1, step_in_epoch=step,
                      global_step=10 + step)


def test_checked_every_step_reads_at_once_and_stops_before_the_update(tmp_path):
    values = StepValues(defer=False, log=JsonlLog(tmp_path / "log.jsonl"), out=tmp_path)
    assert _add(values, 0.5, 1, norm=2.0) is None  # nothing for the optimizer to skip on
    assert (values.last_loss, values.last_grad_norm, values.epoch_steps) == (0.5, 2.0, 1)
    with pytest.raises(TrainingDiverged, match=r"loss is inf at epoch 1, step 2 of the epoch \(global step 12\); "
                                               r"training stopped before the update. Last good checkpoint: none"):
        _add(values, math.inf, 2)
    record = read_log(tmp_path / "log.jsonl")[-1]
    assert record["event"] == "diverged" and record["step"] == 12 and record["loss"] == "inf"


def test_deferred_values_are_read_in_one_batch_and_summed():
    values = StepValues(defer=True)
    flags = [_add(values, loss, i + 1, norm=1.0 + i) for i, loss in enumerate([0.25, 0.5, 0.75])]
    assert all(torch.equal(f, torch.zeros(())) for f in flags)
    assert values.epoch_steps == 0 and math.isnan(values.last_loss)  # nothing read yet
    values.read()
    assert (values.epoch_steps, values.epoch_loss_sum, values.last_loss, values.last_grad_norm) == (3, 1.5, 0.75, 3.0)
    values.read()  # nothing pending: a no-op
    values.start_epoch()
    assert (values.epoch_steps, values.epoch_loss_sum) == (0, 0.0)


def test_deferred_flag_turns_on_at_the_first_bad_step_and_stays_on(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    values = StepValues(defer=True, out=tmp_path)
    assert float(_add(values, 1.0, 1)) == 0.0
    assert float(_add(values, 2.0, 2, norm=math.nan)) == 1.0  # a non-finite gradient norm counts too
    assert float(_add(values, 3.0, 3)) == 1.0  # sticky: later finite steps are skipped as well
    with pytest.raises(TrainingDiverged) as err:
        values.read()
    message = str(err.value)
    assert message.startswith("gradient norm is nan at epoch 1, step 2 of the epoch (global step 12); "
                              "the update was skipped on the device, and so were the 1 later step(s) up to global "
                              "step 13, when the host read the values.")


def test_deferred_guard_keeps_the_weights_of_the_last_finite_step():
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 1)
    optimizer = torch.optim.AdamW(layer.parameters(), lr=0.1, fused=True)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    values = StepValues(defer=True)
    x = torch.randn(4, 3)
    snapshots = []
    for scale in (1.0, math.nan, 1.0):  # the second step's loss is NaN, the third is finite again
        optimizer.zero_grad()
        loss = layer(x).square().mean() * scale
        loss.backward()
        step_unless(optimizer, scaler, values.add(loss, None, epoch=0, step_in_epoch=len(snapshots) + 1,
                                                  global_step=len(snapshots) + 1))
        snapshots.append(layer.weight.detach().clone())
    assert torch.isfinite(snapshots[1]).all()
    assert torch.equal(snapshots[1], snapshots[0]) and torch.equal(snapshots[2], snapshots[0])
    with pytest.raises(TrainingDiverged, match="loss is nan at epoch 0, step 2 of the epoch"):
        values.read()
