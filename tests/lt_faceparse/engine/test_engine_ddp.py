"""Multi-process runs on CPU (gloo, torchrun on 127.0.0.1) and a run killed with SIGKILL.

Marked slow: each test starts fresh Python processes that import torch (seconds each on a busy box).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import torch
from engine_testdata import (HERE, MemoryFaces, TinyWithUnused, eval_model, register_test_models, tiny_config,
                             torchrun_command)
from safetensors.torch import load_file

from lt_faceparse.engine.checkpoint import list_checkpoints, load_checkpoint
from lt_faceparse.engine.config import load_config
from lt_faceparse.engine.evaluate import evaluate_model
from lt_faceparse.engine.progress import read_log
from lt_faceparse.engine.train import train
from lt_faceparse.records import load_record

REPO = HERE.parents[2]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}


def _run(cmd: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _max_diff(a, b) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k] - b[k]).abs().max()) for k in a)


@pytest.mark.slow
def test_two_rank_gloo_training_matches_one_process_with_the_same_global_batch(tmp_path):
    """scripts/train.py under torchrun (rank 0 generates SynthFace-LT, rank 1 waits) vs one process,
    with a model holding a parameter that gets no gradient."""
    overrides = [f"data.root={tmp_path / 'synth'}", "data.synthetic={num_images: 40, size: 32, seed: 0}",
                 "data.resolution=32", "model.name=tiny_unused_test", "model.kwargs={width: 8}", "optim.epochs=2",
                 "batch.global=8", "log_every=1", "find_unused_parameters=true"]
    _run(torchrun_command(2, "script", str(REPO / "scripts" / "train.py"), "--config", "synth_tiny",
                          "--out", str(tmp_path / "ddp"), *overrides))
    register_test_models()
    single = train(load_config("synth_tiny", [*overrides, f"out={tmp_path / 'single'}"]))

    start = read_log(tmp_path / "ddp" / "log.jsonl")[0]
    assert (start["world_size"], start["per_gpu"], start["accumulation"], start["steps_per_epoch"]) == (2, 4, 1, 4)
    ddp_w = load_file(str(tmp_path / "ddp" / "final.safetensors"))
    single_w = load_file(str(single / "final.safetensors"))
    assert _max_diff(ddp_w, single_w) < 1e-5
    torch.manual_seed(0)  # the initial weights (train seeds with config seed 0 before building)
    initial = TinyWithUnused(19, 8).state_dict()
    assert _max_diff({k: single_w[k] for k in single_w if "unused" not in k},
                     {k: initial[k] for k in initial if "unused" not in k}) > 1e-2  # the weights did move
    for key in ("unused.weight", "unused.bias"):  # no gradient: AdamW leaves them alone on every rank
        assert torch.equal(ddp_w[key], initial[key]) and torch.equal(single_w[key], initial[key])
    ddp_losses = [r["loss"] for r in read_log(tmp_path / "ddp" / "log.jsonl") if r["event"] == "step"]
    single_losses = [r["loss"] for r in read_log(single / "log.jsonl") if r["event"] == "step"]
    assert len(ddp_losses) == 8
    np.testing.assert_allclose(ddp_losses, single_losses, rtol=1e-5)
    ddp_val, single_val = load_record(tmp_path / "ddp" / "val"), load_record(single / "val")
    assert ddp_val.num_images == single_val.num_images == 4  # whole val split, scored once across 2 ranks
    assert ddp_val.mean_f1 == pytest.approx(single_val.mean_f1, abs=1e-3)


@pytest.mark.slow
def test_run_killed_mid_epoch_and_resumed_ends_with_the_uninterrupted_weights(tmp_path):
    sections = dict(optim={"epochs": 6, "milestones": [3]}, batch={"global": 4},
                    checkpoint={"every_steps": 1, "keep_last": 3}, deterministic=True, log_every=100)
    dataset = {"n": 48}
    run = tmp_path / "killed"
    spec = {"config": tiny_config(run, **sections), "dataset": dataset}
    proc = subprocess.Popen([sys.executable, str(HERE / "engine_testdata.py"), "train", json.dumps(spec)], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not list_checkpoints(run):  # the first checkpoint is mid-epoch: after step 1 of 12
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (run / "final.safetensors").exists()
    latest = list_checkpoints(run)[-1]
    state = load_checkpoint(latest)
    assert state["global_step"] < 72  # killed before the end (6 epochs x 12 steps)

    train(tiny_config(run, resume=True, **sections), train_dataset=MemoryFaces(**dataset))
    whole = train(tiny_config(tmp_path / "whole", **sections), train_dataset=MemoryFaces(**dataset))
    assert _max_diff(load_file(str(run / "final.safetensors")), load_file(str(whole / "final.safetensors"))) == 0.0
    starts = [r for r in read_log(run / "log.jsonl") if r["event"] == "start"]
    assert len(starts) == 2 and starts[1]["resumed_from"].endswith(latest.name)
    assert starts[1]["global_step"] == state["global_step"] > 0


@pytest.mark.slow
def test_two_rank_evaluation_equals_one_rank_with_an_odd_number_of_images(tmp_path):
    dataset = {"n": 7, "split": "val", "seed": 3}
    spec = {"dataset": dataset, "batch_size": 2, "protocol": "input", "out": str(tmp_path / "two")}
    _run(torchrun_command(2, "eval", json.dumps(spec)))
    one = evaluate_model(eval_model(), MemoryFaces(**dataset), batch_size=3)
    two = load_record(tmp_path / "two")

    assert one.num_images == two.num_images == 7
    assert json.dumps(one.per_class) == json.dumps(two.per_class)  # NaN (absent classes) compare equal as text
    assert (one.mean_f1, one.mean_iou_with_bg, one.pixel_accuracy) == (two.mean_f1, two.mean_iou_with_bg,
                                                                       two.pixel_accuracy)
    a, b = one.per_image, two.per_image
    assert list(a.image_ids) == list(b.image_ids) == list(range(7))
    assert list(b.names) == [f"val_{i:03d}" for i in range(7)]
    for key in ("gt", "pred", "inter"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key))
    assert int(a.gt.sum()) == 7 * 16 * 16  # every pixel of every image counted once


@pytest.mark.slow
def test_two_rank_training_with_the_compiled_forward_matches_one_process(tmp_path):
    """compile=default under DDP (the CUDA default, here on gloo): Dynamo's DDP graph splitting, a parameter
    without gradient, and the same weights as one compiled process."""
    overrides = [f"data.root={tmp_path / 'synth'}", "data.synthetic={num_images: 24, size: 32, seed: 0}",
                 "data.resolution=32", "model.name=tiny_unused_test", "model.kwargs={width: 8}", "optim.epochs=1",
                 "batch.global=8", "log_every=1", "find_unused_parameters=true", "compile=default"]
    ddp = _run(torchrun_command(2, "script", str(REPO / "scripts" / "train.py"), "--config", "synth_tiny",
                                "--out", str(tmp_path / "ddp"), *overrides), timeout=300)
    assert "running eagerly" not in ddp.stderr  # the compiled forward held on both ranks
    register_test_models()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a fallback to eager would fail here
        single = train(load_config("synth_tiny", [*overrides, f"out={tmp_path / 'single'}"]))
    assert read_log(tmp_path / "ddp" / "log.jsonl")[0]["world_size"] == 2
    assert _max_diff(load_file(str(tmp_path / "ddp" / "final.safetensors")),
                     load_file(str(single / "final.safetensors"))) < 1e-4
