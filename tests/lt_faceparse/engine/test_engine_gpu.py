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
                         grad_clip=1.0, optim={"epochs": 3}, compile=False)  # compile: see the default-path test
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
    sections = dict(device="cuda", optim={"epochs": 2}, checkpoint={"every_steps": 1, "keep_last": 10}, compile=False)
    train(tiny_config(tmp_path / "run", **sections), train_dataset=MemoryFaces(32))
    state = load_checkpoint(list_checkpoints(tmp_path / "run")[0])
    assert len(state["rng"][0]["cuda"]) == torch.cuda.device_count()


def test_cuda_default_training_is_compiled_fused_and_deferred(tmp_path, monkeypatch):
    from lt_faceparse.engine import train as train_module

    seen = {}
    real = train_module.Trainer.__init__

    def spy(self, *args, **kwargs):
        real(self, *args, **kwargs)
        seen.update(compiled=self.train_forward.compiled, fused=self.optimizer.param_groups[0]["fused"],
                    deferred=self.steps.defer)

    monkeypatch.setattr(train_module.Trainer, "__init__", spy)
    run = train(tiny_config(tmp_path / "run", device="cuda", precision="bf16", optim={"epochs": 2}, log_every=3),
                train_dataset=MemoryFaces(32))
    assert seen == {"compiled": True, "fused": True, "deferred": True}
    log = read_log(run / "log.jsonl")
    assert [r["step"] for r in log if r["event"] == "step"] == [3, 6]
    losses = [r["loss"] for r in log if r["event"] == "epoch"]
    assert len(losses) == 2 and losses[-1] < losses[0]


def test_cuda_prefetcher_yields_the_loaders_batches_on_the_device():
    from lt_faceparse.engine.epoch_loader import EpochLoader
    from lt_faceparse.engine.sampling import EpochSeededDataset, ResumableDistributedSampler

    data = MemoryFaces(10)
    seeded = EpochSeededDataset(data, seed=0)
    sampler = ResumableDistributedSampler(data, num_replicas=1, rank=0, shuffle=True, seed=0)
    on_cpu = [b.images for b in EpochLoader(seeded, sampler, 4, num_workers=0, seed=0,
                                            device=torch.device("cpu")).epoch(1)]
    on_gpu = [b for b in EpochLoader(seeded, sampler, 4, num_workers=1, seed=0,
                                     device=torch.device("cuda")).epoch(1)]
    assert len(on_gpu) == len(on_cpu) == 2
    for a, b in zip(on_cpu, on_gpu):
        assert b.images.is_cuda and b.labels.is_cuda and torch.equal(a, b.images.cpu())


def test_cuda_nan_loss_is_skipped_on_the_device_and_stops_the_run(tmp_path):
    from test_engine_train_loop import _NaNAt

    from lt_faceparse.engine.train import TrainingDiverged
    from lt_faceparse.models import register_model

    register_model("tiny_nan_at_test", _NaNAt, overwrite=True)
    config = tiny_config(tmp_path / "run", device="cuda", model={"name": "tiny_nan_at_test",
                                                                  "kwargs": {"width": 8, "nan_at": 5}},
                         optim={"epochs": 3}, log_every=3, checkpoint={"every_steps": 0, "keep_last": 5}, compile=False)
    with pytest.raises(TrainingDiverged, match=r"global step 5\); the update was skipped on the device"):
        train(config, train_dataset=MemoryFaces(32))
    state = load_checkpoint(list_checkpoints(tmp_path / "run")[-1])
    assert all(torch.isfinite(v).all() for v in state["model"].values())
