"""SIGTERM / SIGUSR1 while training in one process: a checkpoint of that step, ``Preempted`` with
``128 + signal``, the caller's handlers restored, and a resumed run equal to the uninterrupted one.
(Several ranks agreeing on the step: ``test_engine_cluster.py``.)"""

from __future__ import annotations

import signal

import pytest
from engine_testdata import MemoryFaces, register_test_models, tiny_config
from safetensors.torch import load_file

from lt_faceparse.engine.checkpoint import list_checkpoints, load_checkpoint
from lt_faceparse.engine.preemption import Preempted, PreemptionGuard, exit_code_for
from lt_faceparse.engine.progress import read_log
from lt_faceparse.engine.train import train

# 32 images, global batch 8: 4 optimizer steps per epoch; checkpoints at epoch ends only
SECTIONS = dict(model={"name": "tiny_signalling_test", "kwargs": {"width": 8}}, optim={"epochs": 3},
                deterministic=True, val={"every_epochs": 1})


@pytest.fixture
def caller_handlers():
    """Handlers of the test process that train() must leave in place."""
    def mine(signum, frame):
        raise AssertionError(f"the caller's handler ran for signal {signum}")

    before = {sig: signal.signal(sig, mine) for sig in (signal.SIGTERM, signal.SIGUSR1)}
    yield mine
    for sig, handler in before.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize("signame, at_step, stop, workers", [
    ("SIGTERM", 6, (1, 2, 6), 0),  # mid-epoch: step 2 of epoch 1 -> checkpoint of that step
    ("SIGUSR1", 8, (2, 0, 8), 0),  # the epoch's last step -> the epoch-end checkpoint, stop before validating
    # 2 data-loader workers get SIGTERM at step 9 (as from a scheduler) and must keep serving (2 x 2 batches
    # prefetched) until the training process gets it at step 15 (batch 4: 8 steps per epoch)
    ("SIGTERM", 15, (1, 7, 15), 2),
])
def test_a_signal_checkpoints_its_step_and_the_resumed_run_equals_the_uninterrupted_one(
        tmp_path, monkeypatch, caller_handlers, signame, at_step, stop, workers):
    register_test_models()
    val = MemoryFaces(8, split="val", seed=1)
    sections = {**SECTIONS, "data": {"num_workers": workers}, "batch": {"global": 8 if not workers else 4}}
    whole = train(tiny_config(tmp_path / "whole", **sections), train_dataset=MemoryFaces(32), val_dataset=val)

    run = tmp_path / "run"
    # rank 0 signals itself during that step (and its data-loader workers, earlier in the epoch)
    monkeypatch.setenv("LTFP_TEST_SIGNAL", f"{signame}:0:{at_step}" + (":9" if workers else ""))
    with pytest.raises(Preempted) as err:
        train(tiny_config(run, **sections), train_dataset=MemoryFaces(32), val_dataset=val)
    sig = getattr(signal, signame)
    assert err.value.signal == sig and err.value.exit_code == exit_code_for(sig) == 128 + sig
    assert all(signal.getsignal(s) is caller_handlers for s in (signal.SIGTERM, signal.SIGUSR1))
    epoch, step_in_epoch, global_step = stop
    newest = list_checkpoints(run)[-1]
    assert err.value.checkpoint == str(newest) and f"global step {global_step}" in str(err.value)
    state = load_checkpoint(newest)
    assert (state["epoch"], state["step_in_epoch"], state["global_step"]) == stop
    log = read_log(run / "log.jsonl")
    assert log[-1]["event"] == "preempted" and log[-1]["signal"] == signame
    assert (log[-1]["epoch"], log[-1]["step_in_epoch"], log[-1]["step"]) == stop
    assert [r["step"] for r in log if r["event"] == "step"][-1] == global_step  # not one step further
    assert [r["epoch"] for r in log if r["event"] == "val"] == [1]  # epoch 2's validation was not started

    monkeypatch.delenv("LTFP_TEST_SIGNAL")
    train(tiny_config(run, resume="auto", **sections), train_dataset=MemoryFaces(32), val_dataset=val)
    a, b = load_file(str(whole / "final.safetensors")), load_file(str(run / "final.safetensors"))
    assert a.keys() == b.keys() and all(bool((a[k] == b[k]).all()) for k in a)
    starts = [r for r in read_log(run / "log.jsonl") if r["event"] == "start"]
    assert starts[-1]["resumed_from"].endswith(newest.name) and starts[-1]["global_step"] == global_step


def test_guard_restores_handlers_on_an_error_and_stops_on_request_without_a_process_group(caller_handlers):
    with pytest.raises(RuntimeError, match="boom"):
        with PreemptionGuard() as guard:
            assert signal.getsignal(signal.SIGTERM) == guard._on_signal
            raise RuntimeError("boom")
    assert signal.getsignal(signal.SIGTERM) is caller_handlers
    with PreemptionGuard() as guard:
        assert not guard.stop_at_this_step() and not guard.stop_now()
        signal.raise_signal(signal.SIGUSR1)  # handled by the guard, not by the caller's handler
        signal.raise_signal(signal.SIGTERM)  # the first signal counts
        assert guard.received == signal.SIGUSR1
        assert guard.stop_at_this_step() and guard.stop_now() and guard.agreed == signal.SIGUSR1

