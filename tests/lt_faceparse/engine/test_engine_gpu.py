"""Mixed precision and channels-last on CUDA (skipped without a GPU; run by scripts/gpu_check.sh)."""

from __future__ import annotations

import math

import pytest
import torch
from engine_testdata import MemoryFaces, tiny_config
from safetensors.torch import load_file

from lt_faceparse.engine.checkpoint import list_checkpoints, load_checkpoint
from lt_faceparse.engine.progress import read_log
from lt_faceparse.engine.train import train

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_channels_last_training_on_cuda(tmp_path, precision):
    config = tiny_config(tmp_path / "run", device="cuda", precision=precision, channels_last=True,
                         grad_clip=1.0, optim={"epochs": 3})
    run = train(config, train_dataset=MemoryFaces(32), val_dataset=MemoryFaces(7, split="val", seed=1))
    log = read_log(run / "log.jsonl")
    assert log[0]["device"].startswith("cuda")
    losses = [r["loss"] for r in log if r["event"] == "epoch"]
    assert losses[-1] < losses[0]
    weights = load_file(str(run / "final.safetensors"))
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in weights.values())
    scaler = load_checkpoint(list_checkpoints(run)[-1])["scaler"]
    assert bool(scaler) == (precision == "fp16")  # a GradScaler only for fp16
    assert all(math.isfinite(r["grad_norm"]) and r["grad_norm"] > 0 for r in log if r["event"] == "step")


def test_cuda_resume_restores_cuda_rng(tmp_path):
    sections = dict(device="cuda", optim={"epochs": 2}, checkpoint={"every_steps": 1, "keep_last": 10})
    train(tiny_config(tmp_path / "run", **sections), train_dataset=MemoryFaces(32))
    state = load_checkpoint(list_checkpoints(tmp_path / "run")[0])
    assert len(state["rng"][0]["cuda"]) == torch.cuda.device_count()
